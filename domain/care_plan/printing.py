"""The printable progetto individualizzato: one self-contained HTML page (no external assets) that prints cleanly
on A4, with Italian labels, to be signed by the person (or their representative), the case manager and the equipe.

It renders a plan snapshot (the current one, or any stored version), so a printed version can be reproduced later.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from html import escape
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import policy, queries, repository, signatories
from domain.care_plan.models import PLAN_KIND_LABELS, PLAN_STATE_LABELS
from domain.kernel import clock
from domain.registry import persons
from domain.security import audit, directory
from domain.territory import queries as territory
from schemas.care_plan import GOAL_STATUS_LABELS as GOAL_STATUS
from schemas.care_plan import INTERVENTION_STATUS_LABELS as INTERVENTION_STATUS

PRINT_FULL_ONLY = "La stampa del progetto è riservata a chi ha in carico la persona."


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


async def print_plan(session: AsyncSession, *, principal, plan_id: uuid.UUID, version: int | None = None) -> str:
    """The HTML of the plan (current version, or `version`)."""
    plan_row = await repository.plan_row(session, plan_id)
    await policy.require_full(session, principal, plan_row, PRINT_FULL_ONLY)
    if version is None:
        goals, ivs, reviews = await repository.children(session, plan_row.id)
        snap = repository.snapshot_of(plan_row, goals, ivs, reviews)
        number = plan_row.version
        current = await repository.version_row(session, plan_row.id, number)
        version_at = current.at if current is not None else None
    else:
        row = await queries.get_version(session, principal=principal, plan_id=plan_id, version=version)
        snap, number, version_at = row.data, row.version, row.at
    plan = snap["plan"]
    person = await persons.person_record(session, plan_row.person_id)
    case_manager_id = uuid.UUID(plan["case_manager_id"])
    names = await territory.org_names(session, [person.residence_comune_id, plan_row.ambito_id])
    cm = (await directory.user_cards(session, [case_manager_id])).get(case_manager_id)
    ivs = [i for i in snap.get("interventions", []) if i.get("status") != "cancelled"]
    labels = await repository.labels(session, services=(i["service_type"] for i in ivs),
                                     orgs=(uuid.UUID(i["provider_org_id"]) for i in ivs if i.get("provider_org_id")),
                                     funds=(i.get("funding_source") for i in ivs))
    interventions = [{**i, "service_label": labels["service"].get(i["service_type"]),
                      "provider_name": (labels["org"].get(uuid.UUID(i["provider_org_id"]))
                                        if i.get("provider_org_id") else None),
                      "funding_label": labels["funding"].get(i.get("funding_source") or ""),
                      "intensity_label": repository.intensity_label(i.get("intensity_value"), i.get("intensity_unit"))}
                     for i in ivs]
    signed_by = plan.get("signatories") or await signatories.expected_signatories(
        session, vmd_id=uuid.UUID(plan["vmd_id"]) if plan.get("vmd_id") else None, case_manager_id=case_manager_id)
    ctx = {"plan": plan, "goals": snap.get("goals", []), "interventions": interventions,
           "person": {"name": f"{person.given_name} {person.surname}", "birth_date": person.birth_date,
                      "comune": names.get(person.residence_comune_id)},
           "ambito_name": names.get(plan_row.ambito_id), "case_manager": cm.display_name if cm else None,
           "signatories": signed_by, "version": number, "date": version_at or clock.now(),
           "printed_on": clock.today_rome()}
    audit.record(action="print", object_type=repository.OBJECT, object_ids=[plan_row.id],
                 person_ids=[plan_row.person_id])
    return render_html(ctx)
