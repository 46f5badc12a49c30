"""Who saw a person's data: the audit rows naming the person (and any record merged into them)."""
from __future__ import annotations

import csv
import html
import io
import uuid
from datetime import datetime

import sqlalchemy as sa

from domain.kernel import clock
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import Forbidden, NotFound
from domain.kernel.validity import Span
from domain.registry import policy
from domain.registry.models import CONSENT_PURPOSE_LABELS, Cartella, Person, PersonMerge
from domain.security import audit
from domain.security.models import ROLE_LABELS, Role
from domain.territory import queries as territory
from domain.territory.models import OrgKind


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


async def access_log(session, *, principal, person_id: uuid.UUID, limit: int = 100,
                     cursor: str | None = None, at: Span | None = None) -> tuple[list[dict], str | None]:
    person = await session.get(Person, person_id)
    if person is not None and person.merged_into_id is not None:
        person = await session.get(Person, person.merged_into_id)  # an old id: the log of the person kept
    if person is None:
        raise NotFound("Persona non trovata.")
    await _check_reader(session, principal, person)
    ids = await _all_ids(session, person.id)
    before = cursor_codec.decode_time_id(CURSOR_KIND, cursor, id_type=int) if cursor else None
    rows, nxt = _page(await audit.events_about(session, ids, limit=limit + 1, before=before, at=at), limit,
                      CURSOR_KIND)
    names = await territory.org_names(session, (o for r in rows for o in r.organisation_ids))
    items = [_item(r, names) for r in rows]
    audit.record(action="read", object_type="access_log", object_ids=[person.id], person_ids=[person.id],
                 result_count=len(items), purpose="diritto di accesso dell'interessato")
    return items, nxt


def _page(rows: list, limit: int, kind: str) -> tuple[list, str | None]:
    """The page of audit rows read one more than `limit`, and the cursor of the next page (None on the last)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, cursor_codec.encode_time_id(kind, rows[-1].at, rows[-1].id)


# The routes of the regional helpdesk's search (api/routes/regional.py), as the audit rows name them.
REGIONAL_SEARCH_ROUTES = ("GET /api/regional/persons", "POST /api/regional/persons/search")
REGIONAL_CURSOR_KIND = "regional_searches"


async def regional_searches(session, *, principal, limit: int = 100, cursor: str | None = None
                            ) -> tuple[list[dict], str | None]:
    """The regional helpdesk's searches, newest first, for a DPO: the Region's DPO sees every one, an Ambito's DPO
    those that found one of its persons (each of whom also finds it in their access log). Who searched, when, for
    which purpose and reason, how many were found — not whom."""
    if not principal.has_role(Role.dpo):
        raise Forbidden("Solo il DPO legge le ricerche regionali.")
    held_on = await territory.get_org(session, principal.ambito_id)
    on_region = held_on is not None and str(held_on.kind) == OrgKind.regione.value
    before = cursor_codec.decode_time_id(REGIONAL_CURSOR_KIND, cursor, id_type=int) if cursor else None
    rows, nxt = _page(await audit.searches_of(
        session, REGIONAL_SEARCH_ROUTES, limit=limit + 1, before=before,
        about=None if on_region else _naming_a_person_of(principal.ambito_id)), limit, REGIONAL_CURSOR_KIND)
    names = await territory.org_names(session, (o for r in rows for o in r.organisation_ids))
    items = [{**_item(r, names), "result_count": r.result_count} for r in rows]
    audit.record(action="read", object_type="regional_searches", result_count=len(items))
    return items, nxt


def _naming_a_person_of(ambito_id: uuid.UUID):
    """The condition on an audit row's person ids: one of them is a person of the Ambito."""
    return lambda person_ids: sa.exists().where(Person.id == sa.any_(person_ids), Person.ambito_id == ambito_id)


def _item(r, names: dict) -> dict:
    """One row of the log: the stored codes (JSON keeps them) and the Italian words the person reads."""
    return {
        "id": r.id, "at": r.at, "actor_username": r.actor_username,
        "actor_label": r.actor_username or audit.NO_ACTOR_LABEL, "roles": r.roles,
        "role_labels": [ROLE_LABELS.get(x, x) for x in r.roles],
        "organisations": [names.get(o, str(o)) for o in r.organisation_ids], "action": r.action,
        "action_label": audit.ACTION_LABELS.get(r.action, r.action), "object_type": r.object_type,
        "object_type_label": audit.OBJECT_TYPE_LABELS.get(r.object_type, r.object_type) if r.object_type else None,
        "route": r.route, "purpose": r.purpose,
        "purpose_label": CONSENT_PURPOSE_LABELS.get(r.purpose, r.purpose) if r.purpose else None,
        "legal_basis": r.legal_basis, "outcome": r.outcome,
        "outcome_label": audit.OUTCOME_LABELS.get(r.outcome, r.outcome), "break_glass": r.break_glass,
    }


TIME_HEADER = "Data e ora (ora italiana)"


def rome_time(at: datetime) -> str:
    """The instant as an Italian reader expects it: Europe/Rome wall clock, day first (02/03/2026 09:00)."""
    return at.astimezone(clock.ROME).strftime("%d/%m/%Y %H:%M")


# (header, value) of each column of the CSV and of the printable page, in the person's language.
_COLUMNS = [
    (TIME_HEADER, lambda i: rome_time(i["at"])),
    ("Operatore", lambda i: i["actor_label"]),
    ("Ruoli", lambda i: ", ".join(i["role_labels"])),
    ("Organizzazioni", lambda i: ", ".join(i["organisations"])),
    ("Azione", lambda i: i["action_label"]),
    ("Dati interessati", lambda i: i["object_type_label"] or ""),
    ("Finalità", lambda i: i["purpose_label"] or ""),
    ("Base giuridica", lambda i: i["legal_basis"] or ""),
    ("Esito", lambda i: i["outcome_label"]),
    ("Accesso straordinario", lambda i: "sì" if i["break_glass"] else "no"),
]
CSV_HEADER = [h for h, _ in _COLUMNS]


def to_csv(items: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow(CSV_HEADER)
    for i in items:
        w.writerow([value(i) for _, value in _COLUMNS])
    return buf.getvalue()


def to_html(person: dict, items: list[dict]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(value(i))}</td>" for _, value in _COLUMNS) + "</tr>" for i in items)
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in _COLUMNS)
    title = f"Registro degli accessi ai dati di {html.escape(person['name'])}"
    return f"""<!doctype html><html lang="it"><head><meta charset="utf-8"><title>{title}</title>
<style>@page {{ size: A4 landscape; margin: 12mm; }} body {{ font-family: sans-serif; font-size: 9pt; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border: 1px solid #999; padding: 1.5mm; text-align: left; }}
thead {{ display: table-header-group; }} tr {{ page-break-inside: avoid; }}</style></head>
<body><h1>{title}</h1><p>Estratto ai sensi dell'art. 15 GDPR. Voci: {len(items)}. Date e ore nell'ora italiana
(Europe/Rome).</p>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></body></html>"""
