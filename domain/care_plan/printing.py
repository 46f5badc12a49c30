"""The printable progetto individualizzato, to be signed by the person (or their representative), the case manager
and the equipe: one document (`print_document`: every label resolved, every date written the Italian way) rendered
as a self-contained HTML page that prints cleanly on A4 (`render_html`, no external assets) or as an A4 PDF
(pdf.py).

It renders a plan snapshot (the current one, or any stored version), so a printed version can be reproduced later.
The document names the person (surname first, codice fiscale, residence), the cartella, the VMD the plan comes from
with its scores, the case manager and their organisation, and which version it is: its number and date, and the
number and date of the version the person signed.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from html import escape
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment
from domain.assessment.models import VMD_OUTCOME_LABELS, VMD_STATE_LABELS
from domain.care_plan import pdf, policy, queries, repository, signatories
from domain.care_plan.models import PLAN_KIND_LABELS, PLAN_STATE_LABELS
from domain.kernel import clock
from domain.kernel.errors import DomainError
from domain.registry import cartelle, persons
from domain.registry.models import AREA_LABELS
from domain.security import audit
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


def day(value: Any) -> str:
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


def render_html(doc: dict[str, Any]) -> str:
    """The document (print_document) as one HTML page."""
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="it">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(doc['title'])}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>",
        "<header>", f"<h1>{_e(doc['kind'])}</h1>",
        f'<p class="meta">{_e(doc["ambito_name"])}</p>',
        f'<p class="meta">{_e(doc["version_label"])} &middot; {_e(doc["agreed_label"])} &middot; '
        f'Stato: {_e(doc["state"])}</p>',
        *([f'<p class="meta"><strong>{_e(doc["draft_warning"])}</strong></p>'] if doc["draft_warning"] else []),
        "</header>",
        '<section class="person">', "<h2>Persona</h2>", _data(doc["person"]), "</section>",
        '<section class="plan">', "<h2>Progetto</h2>", _data(doc["plan"]),
    ]
    if doc["summary"]:
        out += ["<h2>Sintesi dei bisogni e del progetto</h2>", f"<p>{_e(doc['summary'])}</p>"]
    out.append("</section>")
    if doc["vmd"]:
        out += ['<section class="vmd">', "<h2>Valutazione multidimensionale (VMD)</h2>",
                f"<p>{_e(doc['vmd']['heading'])}</p>",
                _table(HEADINGS["vmd"], doc["vmd"]["scores"], "Nessun punteggio disponibile."), "</section>"]
    out += ['<section class="goals">', "<h2>Obiettivi</h2>",
            _table(HEADINGS["goals"], doc["goals"], "Nessun obiettivo indicato."), "</section>",
            '<section class="interventions">', "<h2>Interventi</h2>",
            _table(HEADINGS["interventions"], doc["interventions"], "Nessun intervento indicato."), "</section>",
            '<section class="signatures">', "<h2>Firme</h2>", f"<p>{_e(doc['signature_note'])}</p>", "<table>",
            "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in HEADINGS["signatures"]) + "</tr></thead>",
            "<tbody>"]
    for role, name, organisation in doc["signatories"]:
        who = _e(name) + (f'<br><span class="meta">{_e(organisation)}</span>' if organisation else "")
        out.append(f"<tr><td>{_e(role)}</td><td>{who}</td>"
                   '<td><span class="sign-line"></span></td><td><span class="sign-line"></span></td></tr>')
    out += ["</tbody>", "</table>", "</section>", f"<footer>{_e(doc['footer'])}</footer>", "</body>", "</html>"]
    return "\n".join(out)


def _data(pairs: list[tuple[str, str]]) -> str:
    return '<dl class="data">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"


def _table(headings: tuple[str, ...], rows: list[tuple[str, ...]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------------------------------------------- the document
SIGNATURE_NOTE = ("Le parti sottoscrivono il progetto e si impegnano a realizzarlo per quanto di competenza. "
                  "La persona (o chi la rappresenta legalmente) presta il consenso alla presa in carico.")
HEADINGS = {
    "vmd": ("Strumento", "Punteggio", "Valore", "Fascia"),
    "goals": ("N.", "Obiettivo", "Indicatore", "Risultato atteso", "Entro il", "Stato"),
    "interventions": ("Servizio", "Ente erogatore", "Intensità", "Fonte di finanziamento", "Dal", "Al", "Stato"),
    "signatures": ("Ruolo", "Cognome e nome", "Firma", "Data"),
}


def version_labels(plan: dict[str, Any], number: int, at: Any) -> tuple[str, str]:
    """("Versione n. 7 del 02/03/2026", "Sottoscritto il 02/03/2026 (versione n. 6)"): which version this is, and
    which version the person signed (or that nobody has signed yet)."""
    agreed = plan.get("agreed_version")
    signed = (f"Sottoscritto il {day(plan.get('agreed_at'))} (versione n. {agreed})" if agreed
              else "Non ancora sottoscritto")
    return f"Versione n. {number} del {day(at)}", signed


def _scores(view) -> list[tuple[str, str, str, str]]:
    rows = []
    for r in view.responses:
        for s in ((r.response.scores or {}).get("scores") or {}).values():
            value = f"{s.get('value')}/{s['max']}" if s.get("max") is not None else str(s.get("value"))
            rows.append((r.title or r.response.instrument_code, s.get("label") or s.get("code") or "", value,
                         (s.get("band") or {}).get("label") or ""))
    return rows


async def _vmd(session: AsyncSession, principal, vmd_id: uuid.UUID | None) -> dict[str, Any] | None:
    """The VMD the plan comes from, with its scores (never the answers); without scores when the principal may not
    read the VMD itself."""
    if vmd_id is None:
        return None
    try:
        view = await assessment.get_vmd(session, principal=principal, vmd_id=vmd_id)
    except DomainError:
        return {"heading": "VMD di riferimento non consultabile da chi stampa.", "scores": []}
    v = view.vmd
    when = f" il {day(v.concluded_at)}" if v.concluded_at else ""
    outcomes = ", ".join(VMD_OUTCOME_LABELS.get(str(o), str(o)) for o in v.all_outcomes)
    heading = f"VMD {VMD_STATE_LABELS.get(str(v.state), str(v.state)).lower()}{when}"
    return {"heading": heading + (f" - esito: {outcomes}" if outcomes else ""), "scores": _scores(view)}


async def print_document(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                         version: int | None = None) -> dict[str, Any]:
    """What the paper says of the plan (current version, or `version`): strings only, ready to render. Full view
    only; the print is audited."""
    plan_row = await repository.plan_row(session, plan_id)
    await policy.require_full(session, principal, plan_row, PRINT_FULL_ONLY)
    if version is None:
        goals, ivs, reviews = await repository.children(session, plan_row.id)
        snap = repository.snapshot_of(plan_row, goals, ivs, reviews)
        number = plan_row.version
        current = await repository.version_row(session, plan_row.id, number)
        version_at = current.at if current is not None else clock.now()
    else:
        row = await queries.get_version(session, principal=principal, plan_id=plan_id, version=version)
        snap, number, version_at = row.data, row.version, row.at
    plan = snap["plan"]
    person = await persons.person_record(session, plan_row.person_id)
    cartella = await cartelle.cartella_record(session, plan_row.cartella_id)
    case_manager_id = uuid.UUID(plan["case_manager_id"])
    vmd_id = uuid.UUID(plan["vmd_id"]) if plan.get("vmd_id") else None
    names = await territory.org_names(session, [person.residence_comune_id, plan_row.ambito_id])
    cm = await signatories.case_manager(session, case_manager_id)
    ivs = [i for i in snap.get("interventions", []) if i.get("status") != "cancelled"]
    labels = await repository.labels(session, services=(i["service_type"] for i in ivs),
                                     orgs=(uuid.UUID(i["provider_org_id"]) for i in ivs if i.get("provider_org_id")),
                                     funds=(i.get("funding_source") for i in ivs))
    signed_by = plan.get("signatories") or await signatories.expected_signatories(
        session, vmd_id=vmd_id, case_manager_id=case_manager_id)
    kind = PLAN_KIND_LABELS.get(plan.get("kind"), plan.get("kind"))
    state = PLAN_STATE_LABELS.get(plan.get("state"), plan.get("state"))
    name = f"{person.surname} {person.given_name}".strip()
    version_label, agreed_label = version_labels(plan, number, version_at)
    address = ", ".join(x for x in (person.residence_address, names.get(person.residence_comune_id)) if x)
    review = f"{plan.get('review_interval_days')} giorni" + (
        f" - prossima verifica entro il {day(plan.get('next_review_due'))}" if plan.get("next_review_due") else "")
    doc = {
        "title": f"{kind} - {name}", "kind": kind, "state": state, "ambito_name": names.get(plan_row.ambito_id) or "",
        "version": number, "version_label": version_label, "agreed_label": agreed_label,
        "draft_warning": ("Bozza: documento non ancora valido per la sottoscrizione."
                          if plan.get("state") == "draft" else None),
        "person": [("Cognome e nome", name), ("Codice fiscale", person.codice_fiscale or "—"),
                   ("Data di nascita", day(person.birth_date) or "—"),
                   ("Residenza", address or "—"),
                   ("Cartella", f"n. {cartella.legacy_code or cartella.id} - "
                                f"{AREA_LABELS.get(str(cartella.area), str(cartella.area))}, aperta il "
                                f"{day(cartella.opened_at)}")],
        "plan": [("Titolo", plan.get("title") or ""), ("Tipo di progetto", kind), ("Stato", state),
                 ("Case manager", " - ".join(x for x in (cm["name"], cm.get("organisation")) if x)),
                 ("Compilato (sottoscritto) il", day(plan.get("agreed_at")) or "—"),
                 ("Attivato il", day(plan.get("activated_at")) or "—"), ("Verifica ogni", review)],
        "summary": plan.get("summary"),
        "vmd": await _vmd(session, principal, vmd_id),
        "goals": [(str(n), g.get("description") or "", g.get("indicator") or "", g.get("target") or "",
                   day(g.get("due_date")), GOAL_STATUS.get(g.get("status"), g.get("status") or ""))
                  for n, g in enumerate(snap.get("goals", []), 1)],
        "interventions": [(labels["service"].get(i["service_type"]) or i["service_type"],
                           (labels["org"].get(uuid.UUID(i["provider_org_id"])) if i.get("provider_org_id") else "")
                           or "",
                           repository.intensity_label(i.get("intensity_value"), i.get("intensity_unit")) or "",
                           labels["funding"].get(i.get("funding_source") or "") or "",
                           day(i.get("start_date")), day(i.get("end_date")),
                           INTERVENTION_STATUS.get(i.get("status"), i.get("status") or "")) for i in ivs],
        "signatories": [(s.get("role_label") or "", s.get("name") or "", s.get("organisation") or "")
                        for s in signed_by],
        "signature_note": SIGNATURE_NOTE, "headings": HEADINGS,
        "footer": f"{kind} - {version_label} - stampato il {day(clock.today_rome())}",
    }
    audit.record(action="print", object_type=repository.OBJECT, object_ids=[plan_row.id],
                 person_ids=[plan_row.person_id])
    return doc


async def print_plan(session: AsyncSession, *, principal, plan_id: uuid.UUID, version: int | None = None) -> str:
    """The HTML of the plan (current version, or `version`)."""
    return render_html(await print_document(session, principal=principal, plan_id=plan_id, version=version))


async def print_plan_pdf(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                         version: int | None = None) -> bytes:
    """The plan as an A4 PDF (current version, or `version`)."""
    return pdf.render(await print_document(session, principal=principal, plan_id=plan_id, version=version))
