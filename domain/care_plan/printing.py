"""The printable progetto individualizzato: one self-contained HTML page (no external assets) that prints cleanly
on A4, with Italian labels, to be signed by the person (or their representative), the case manager and the equipe.

It renders a plan snapshot (the current one, or any stored version), so a printed version can be reproduced later.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from html import escape
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment.models import VmdAssessor
from domain.care_plan import service
from domain.care_plan.models import PLAN_KIND_LABELS, PLAN_STATE_LABELS
from domain.kernel import clock
from domain.kernel.errors import Forbidden
from domain.kernel.models import EntityHistory
from domain.territory.models import FundingSource, Organisation, ServiceType
from domain.registry.models import Person
from domain.security import audit
from domain.security.models import AppUser

GOAL_STATUS = {"open": "Aperto", "achieved": "Raggiunto", "partly": "Parzialmente raggiunto",
               "not_achieved": "Non raggiunto", "dropped": "Abbandonato"}
INTERVENTION_STATUS = {"planned": "Previsto", "active": "In corso", "ended": "Concluso", "cancelled": "Annullato"}

CSS = """
@page { size: A4; margin: 18mm 15mm 20mm 15mm; }
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; font-size: 10pt;
       line-height: 1.35; color: #000; background: #fff; }
header { border-bottom: 1.5pt solid #000; padding-bottom: 4mm; margin-bottom: 5mm; }
h1 { font-size: 15pt; margin: 0 0 1mm 0; }
h2 { font-size: 12pt; margin: 6mm 0 2mm 0; page-break-after: avoid; break-after: avoid; }
p { margin: 0 0 2mm 0; orphans: 3; widows: 3; }
.meta { font-size: 9pt; color: #222; }
dl.data { display: grid; grid-template-columns: 42mm 1fr; gap: 1mm 4mm; margin: 0; }
dl.data dt { font-weight: bold; }
dl.data dd { margin: 0; }
table { width: 100%; border-collapse: collapse; margin: 0 0 3mm 0; page-break-inside: auto; }
thead { display: table-header-group; }
tfoot { display: table-footer-group; }
tr, th, td { page-break-inside: avoid; break-inside: avoid; }
th, td { border: 0.5pt solid #444; padding: 1.5mm 2mm; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: bold; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.num { white-space: nowrap; }
.empty { font-style: italic; color: #444; }
section.signatures { page-break-inside: avoid; break-inside: avoid; margin-top: 8mm; }
section.signatures table td { height: 16mm; }
.sign-line { display: block; border-bottom: 0.75pt solid #000; height: 10mm; }
footer { margin-top: 6mm; font-size: 8.5pt; color: #333; border-top: 0.5pt solid #999; padding-top: 2mm; }
@media screen { body { max-width: 180mm; margin: 10mm auto; } }
""".strip()


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _d(value: Any) -> str:
    """dd/mm/yyyy from a date, datetime or ISO string (datetimes in Europe/Rome)."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.astimezone(clock.ROME).date() if value.tzinfo else value.date()
    return value.strftime("%d/%m/%Y")


def render_html(ctx: dict[str, Any]) -> str:
    """ctx: person {name, birth_date, comune}, plan (snapshot dict), goals, interventions (with labels),
    case_manager, signatories, version, date."""
    plan = ctx["plan"]
    person = ctx["person"]
    kind = PLAN_KIND_LABELS.get(plan.get("kind"), plan.get("kind"))
    state = PLAN_STATE_LABELS.get(plan.get("state"), plan.get("state"))
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="it">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(kind)} - {_e(person['name'])}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>",
        "<header>", f"<h1>{_e(kind)}</h1>",
        f'<p class="meta">{_e(ctx.get("ambito_name") or "")}</p>',
        f'<p class="meta">Versione n. {_e(ctx["version"])} del {_e(_d(ctx["date"]))} &middot; Stato: {_e(state)}</p>',
        *(['<p class="meta"><strong>Bozza: documento non ancora valido per la sottoscrizione.</strong></p>']
          if plan.get("state") == "draft" else []),
        "</header>",
        "<section class=\"person\">", "<h2>Persona</h2>", '<dl class="data">',
        f"<dt>Cognome e nome</dt><dd>{_e(person['name'])}</dd>",
        f"<dt>Data di nascita</dt><dd>{_e(_d(person.get('birth_date')))}</dd>",
        f"<dt>Comune di residenza</dt><dd>{_e(person.get('comune') or '')}</dd>",
        "</dl>", "</section>",
        "<section class=\"plan\">", "<h2>Progetto</h2>", '<dl class="data">',
        f"<dt>Titolo</dt><dd>{_e(plan.get('title'))}</dd>",
        f"<dt>Tipo di progetto</dt><dd>{_e(kind)}</dd>",
        f"<dt>Stato</dt><dd>{_e(state)}</dd>",
        f"<dt>Case manager</dt><dd>{_e(ctx.get('case_manager') or '')}</dd>",
        f"<dt>Compilato (sottoscritto) il</dt><dd>{_e(_d(plan.get('agreed_at')) or '—')}</dd>",
        f"<dt>Attivato il</dt><dd>{_e(_d(plan.get('activated_at')) or '—')}</dd>",
        f"<dt>Verifica ogni</dt><dd>{_e(plan.get('review_interval_days'))} giorni"
        + (f" &middot; prossima verifica entro il {_e(_d(plan.get('next_review_due')))}"
           if plan.get("next_review_due") else "") + "</dd>",
        "</dl>",
    ]
    if plan.get("summary"):
        out += ["<h2>Sintesi dei bisogni e del progetto</h2>", f"<p>{_e(plan['summary'])}</p>"]
    out.append("</section>")

    out += ['<section class="goals">', "<h2>Obiettivi</h2>"]
    goals = ctx.get("goals") or []
    if goals:
        out += ["<table>", "<thead><tr><th>N.</th><th>Obiettivo</th><th>Indicatore</th><th>Risultato atteso</th>"
                           "<th>Entro il</th><th>Stato</th></tr></thead>", "<tbody>"]
        for n, g in enumerate(goals, 1):
            out.append(f"<tr><td class=\"num\">{n}</td><td>{_e(g.get('description'))}</td>"
                       f"<td>{_e(g.get('indicator'))}</td><td>{_e(g.get('target'))}</td>"
                       f"<td class=\"num\">{_e(_d(g.get('due_date')))}</td>"
                       f"<td>{_e(GOAL_STATUS.get(g.get('status'), g.get('status')))}</td></tr>")
        out += ["</tbody>", "</table>"]
    else:
        out.append('<p class="empty">Nessun obiettivo indicato.</p>')
    out.append("</section>")

    out += ['<section class="interventions">', "<h2>Interventi</h2>"]
    ivs = ctx.get("interventions") or []
    if ivs:
        out += ["<table>", "<thead><tr><th>Servizio</th><th>Ente erogatore</th><th>Intensità</th>"
                           "<th>Fonte di finanziamento</th><th>Dal</th><th>Al</th><th>Stato</th></tr></thead>",
                "<tbody>"]
        for i in ivs:
            out.append(f"<tr><td>{_e(i.get('service_label') or i.get('service_type'))}</td>"
                       f"<td>{_e(i.get('provider_name') or '')}</td>"
                       f"<td class=\"num\">{_e(i.get('intensity_label') or '')}</td>"
                       f"<td>{_e(i.get('funding_label') or '')}</td>"
                       f"<td class=\"num\">{_e(_d(i.get('start_date')))}</td>"
                       f"<td class=\"num\">{_e(_d(i.get('end_date')))}</td>"
                       f"<td>{_e(INTERVENTION_STATUS.get(i.get('status'), i.get('status')))}</td></tr>")
        out += ["</tbody>", "</table>"]
    else:
        out.append('<p class="empty">Nessun intervento indicato.</p>')
    out.append("</section>")

    out += ['<section class="signatures">', "<h2>Firme</h2>",
            "<p>Le parti sottoscrivono il progetto e si impegnano a realizzarlo per quanto di competenza. "
            "La persona (o chi la rappresenta legalmente) presta il consenso alla presa in carico.</p>",
            "<table>", "<thead><tr><th>Ruolo</th><th>Cognome e nome</th><th>Firma</th><th>Data</th></tr></thead>",
            "<tbody>"]
    for s in ctx.get("signatories") or []:
        who = _e(s.get("name") or "")
        if s.get("organisation"):
            who += f"<br><span class=\"meta\">{_e(s['organisation'])}</span>"
        out.append(f"<tr><td>{_e(s.get('role_label'))}</td><td>{who}</td>"
                   '<td><span class="sign-line"></span></td><td><span class="sign-line"></span></td></tr>')
    out += ["</tbody>", "</table>", "</section>",
            f"<footer>{_e(kind)} &middot; versione n. {_e(ctx['version'])} &middot; stampato il "
            f"{_e(_d(ctx['printed_on']))}</footer>", "</body>", "</html>"]
    return "\n".join(out)


async def _expected_signatories(session: AsyncSession, plan: dict[str, Any], cm_name: str | None) -> list[dict]:
    """Before the agreement the signatories are not fixed yet: print the roles with blank names."""
    out: list[dict[str, Any]] = [
        {"role_label": "Persona interessata o rappresentante legale (genitore, tutore, AdS)", "name": ""},
        {"role_label": "Case manager", "name": cm_name or ""},
    ]
    if plan.get("vmd_id"):
        rows = (await session.execute(
            sa.select(AppUser.display_name, Organisation.name)
            .join(VmdAssessor, VmdAssessor.user_id == AppUser.id)
            .join(Organisation, Organisation.id == VmdAssessor.organisation_id)
            .where(VmdAssessor.vmd_id == uuid.UUID(plan["vmd_id"]),
                   AppUser.id != uuid.UUID(plan["case_manager_id"]))
            .order_by(VmdAssessor.added_at, VmdAssessor.id))).all()
        out += [{"role_label": "Componente dell'équipe di valutazione (VMD)", "name": n, "organisation": o}
                for n, o in rows]
    return out


async def print_plan(*, session: AsyncSession, principal, plan_id: uuid.UUID, version: int | None = None) -> str:
    """The HTML of the plan (current version, or `version`)."""
    plan_row = await service._plan_row(session, plan_id)
    if await service._projection(session, principal, plan_row) != "full":
        raise Forbidden("La stampa del progetto è riservata a chi ha in carico la persona.")
    if version is None:
        goals, ivs, reviews = await service._children(session, plan_row.id)
        snap = service.snapshot_of(plan_row, goals, ivs, reviews)
        number = plan_row.version
        version_at = (await session.execute(
            sa.select(EntityHistory.at).where(EntityHistory.entity_type == service.ENTITY,
                                              EntityHistory.entity_id == plan_row.id,
                                              EntityHistory.version == number))).scalar_one_or_none()
    else:
        row = await service.get_version(session=session, principal=principal, plan_id=plan_id, version=version)
        snap, number, version_at = row.data, row.version, row.at
    plan = snap["plan"]
    person = await session.get(Person, plan_row.person_id)
    comune = None
    if person.residence_comune_id is not None:
        comune = (await session.execute(sa.select(Organisation.name)
                                        .where(Organisation.id == person.residence_comune_id))).scalar_one_or_none()
    ambito_name = (await session.execute(sa.select(Organisation.name)
                                         .where(Organisation.id == plan_row.ambito_id))).scalar_one_or_none()
    cm_name = (await session.execute(sa.select(AppUser.display_name)
                                     .where(AppUser.id == uuid.UUID(plan["case_manager_id"])))).scalar_one_or_none()
    ivs = [i for i in snap.get("interventions", []) if i.get("status") != "cancelled"]
    services = {i["service_type"] for i in ivs}
    orgs = {uuid.UUID(i["provider_org_id"]) for i in ivs if i.get("provider_org_id")}
    funds = {i["funding_source"] for i in ivs if i.get("funding_source")}
    service_labels = dict((await session.execute(sa.select(ServiceType.code, ServiceType.label)
                                                 .where(ServiceType.code.in_(services)))).all()) if services else {}
    org_names = {str(k): v for k, v in (await session.execute(
        sa.select(Organisation.id, Organisation.name).where(Organisation.id.in_(orgs)))).all()} if orgs else {}
    fund_labels = dict((await session.execute(sa.select(FundingSource.code, FundingSource.label)
                                              .where(FundingSource.code.in_(funds)))).all()) if funds else {}
    interventions = [{**i, "service_label": service_labels.get(i["service_type"]),
                      "provider_name": org_names.get(i.get("provider_org_id") or ""),
                      "funding_label": fund_labels.get(i.get("funding_source") or ""),
                      "intensity_label": service.intensity_label(i.get("intensity_value"), i.get("intensity_unit"))}
                     for i in ivs]
    signatories = plan.get("signatories") or await _expected_signatories(session, plan, cm_name)
    ctx = {"plan": plan, "goals": snap.get("goals", []), "interventions": interventions,
           "person": {"name": f"{person.given_name} {person.surname}", "birth_date": person.birth_date,
                      "comune": comune},
           "ambito_name": ambito_name, "case_manager": cm_name, "signatories": signatories, "version": number,
           "date": version_at or clock.now(), "printed_on": clock.today_rome()}
    audit.record(action="print", object_type=service.OBJECT, object_ids=[plan_row.id],
                 person_ids=[plan_row.person_id])
    return render_html(ctx)
