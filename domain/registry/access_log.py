"""Who saw a person's data: the audit rows naming the person (and any record merged into them)."""
from __future__ import annotations

import csv
import html
import io
import uuid
from datetime import datetime

import sqlalchemy as sa

from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import NotFound
from domain.registry import policy
from domain.registry.models import Cartella, Person, PersonMerge
from domain.security import audit
from domain.security.models import Role
from domain.territory import queries as territory


async def _check_reader(session, principal, person: Person) -> None:
    if person.ambito_id != principal.ambito_id:
        raise NotFound("Persona non trovata.")
    if principal.has_role(Role.dpo):
        return
    # The owning social worker: a comune social worker whose comune owns one of the person's cartelle.
    orgs = sorted(principal.orgs_for(Role.comune_social_worker), key=str)
    if orgs:
        owned = sa.exists().where(Cartella.person_id == person.id,
                                  policy.owning_org(principal, Role.comune_social_worker, orgs))
        if (await session.execute(sa.select(owned))).scalar():
            return
    raise NotFound("Persona non trovata.")


async def _all_ids(session, person_id: uuid.UUID) -> list[uuid.UUID]:
    ids, frontier = {person_id}, [person_id]
    while frontier:  # records merged into this person, and into those, keep their old ids in the audit rows
        rows = (await session.execute(
            sa.select(PersonMerge.merged_id).where(PersonMerge.kept_id.in_(frontier)))).scalars().all()
        frontier = [r for r in rows if r not in ids]
        ids.update(frontier)
    return sorted(ids, key=str)


CURSOR_KIND = "access_log"


def _cursor(at: datetime, id_: int) -> str:
    return cursor_codec.encode(CURSOR_KIND, [at, id_])


def _uncursor(token: str) -> tuple[datetime, int]:
    at, id_ = cursor_codec.decode(CURSOR_KIND, token)
    return datetime.fromisoformat(at), int(id_)


async def access_log(session, *, principal, person_id: uuid.UUID, limit: int = 100,
                     cursor: str | None = None) -> tuple[list[dict], str | None]:
    person = await session.get(Person, person_id)
    if person is not None and person.merged_into_id is not None:
        person = await session.get(Person, person.merged_into_id)  # an old id: the log of the person kept
    if person is None:
        raise NotFound("Persona non trovata.")
    await _check_reader(session, principal, person)
    ids = await _all_ids(session, person.id)
    rows = await audit.events_about(session, ids, limit=limit + 1, before=_uncursor(cursor) if cursor else None)
    more = len(rows) > limit
    rows = rows[:limit]
    names = await territory.org_names(session, (o for r in rows for o in r.organisation_ids))
    items = [{
        "at": r.at, "actor_username": r.actor_username, "roles": r.roles,
        "organisations": [names.get(o, str(o)) for o in r.organisation_ids], "action": r.action,
        "object_type": r.object_type, "route": r.route, "purpose": r.purpose, "legal_basis": r.legal_basis,
        "outcome": r.outcome, "break_glass": r.break_glass,
    } for r in rows]
    audit.record(action="read", object_type="access_log", object_ids=[person.id], person_ids=[person.id],
                 result_count=len(items), purpose="diritto di accesso dell'interessato")
    return items, (_cursor(rows[-1].at, rows[-1].id) if more and rows else None)


CSV_HEADER = ["data_ora", "operatore", "ruoli", "organizzazioni", "azione", "oggetto", "finalita", "base_giuridica",
              "esito", "accesso_straordinario"]


def to_csv(items: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow(CSV_HEADER)
    for i in items:
        w.writerow([i["at"].isoformat(), i["actor_username"] or "", ", ".join(i["roles"]),
                    ", ".join(i["organisations"]), i["action"], i["object_type"] or "", i["purpose"] or "",
                    i["legal_basis"] or "", i["outcome"], "sì" if i["break_glass"] else "no"])
    return buf.getvalue()


def to_html(person: dict, items: list[dict]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            i["at"].strftime("%d/%m/%Y %H:%M"), i["actor_username"] or "", ", ".join(i["organisations"]),
            i["action"], i["object_type"] or "", i["purpose"] or "", "sì" if i["break_glass"] else "no")) + "</tr>"
        for i in items)
    title = f"Registro degli accessi ai dati di {html.escape(person['name'])}"
    return f"""<!doctype html><html lang="it"><head><meta charset="utf-8"><title>{title}</title>
<style>@page {{ size: A4; margin: 15mm; }} body {{ font-family: sans-serif; font-size: 10pt; }}
table {{ width: 100%; border-collapse: collapse; }} th, td {{ border: 1px solid #999; padding: 2mm; text-align: left; }}
thead {{ display: table-header-group; }} tr {{ page-break-inside: avoid; }}</style></head>
<body><h1>{title}</h1><p>Estratto ai sensi dell'art. 15 GDPR. Voci: {len(items)}.</p>
<table><thead><tr><th>Data e ora</th><th>Operatore</th><th>Organizzazione</th><th>Azione</th><th>Oggetto</th>
<th>Finalità</th><th>Accesso straordinario</th></tr></thead><tbody>{rows}</tbody></table></body></html>"""
