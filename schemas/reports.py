"""Public contracts of the indicator report (LEPS and Piano di Zona): one row per indicator and group, with the
numerator, the denominator, the value, the year's target and the status against it. Counts from 1 to 4 read "<5",
cells withheld to protect them read "n.d."."""
from __future__ import annotations

import html
import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.kernel.clock import ROME
from domain.reporting.service import (
    GROUPING_LABELS,
    READING_LABELS,
    STATUS_LABELS,
    LepsReport,
    PersonsBehind,
    Report,
    Row,
    Trend,
)

CSV_HEADERS = ["Codice", "Indicatore", "Raggruppamento", "Gruppo", "Numeratore", "Denominatore", "Valore",
               "Obiettivo", "Esito rispetto all'obiettivo", "Lettura", "Data limite", "Riferimento seed",
               "Definizione"]


class IndicatorRow(BaseModel):
    code: str = Field(title="Codice", description="Codice dell'indicatore (P1, P4, D6, R2, CARTELLE...).")
    title: str = Field(title="Indicatore", description="Titolo in italiano.")
    grouping: str = Field(title="Raggruppamento", description="ambito, sub_ambito, comune o area.")
    grouping_label: str = Field(title="Raggruppamento (dicitura)", description="Il raggruppamento in italiano.")
    key: str | None = Field(title="Gruppo", description="Identificativo del sub-ambito o del comune, codice "
                                                        "dell'area; nullo per l'Ambito e per «non attribuito».")
    label: str = Field(title="Gruppo (dicitura)", description="Nome del gruppo.")
    numerator: int | str = Field(title="Numeratore", description="Conteggio, oppure «<5» (da 1 a 4) o «n.d.» "
                                                                 "(nascosto per proteggere un'altra cella).")
    denominator: int | str | None = Field(title="Denominatore", description="Come il numeratore; nullo per un "
                                                                            "conteggio senza denominatore.")
    value: float | None = Field(title="Valore", description="Numeratore / denominatore arrotondato a 4 decimali; "
                                                              "nullo se il denominatore è 0 o se una cella è "
                                                              "nascosta; per un conteggio, il conteggio.")
    unit: str = Field(title="Unità", description="percent, ratio o count.")
    target: str | None = Field(title="Obiettivo", description="Obiettivo dell'anno (es. «≥ 75%»), se c'è.")
    target_value: float | None = Field(title="Valore obiettivo", description="La soglia come frazione (0-1).")
    status: str = Field(title="Esito", description="met, not_met, no_target, not_computable, withheld.")
    status_label: str = Field(title="Esito (dicitura)", description="L'esito in italiano.")
    reading: str = Field(title="Lettura", description="same_period, cohort o event_date.")
    cutoff: datetime | None = Field(title="Data limite", description="Per la lettura per coorte: gli "
                                                                     "eventi conclusivi contano fino a "
                                                                     "quest'istante (escluso).")
    reference: str = Field(title="Definizione", description="Dove è definito l'indicatore (docs/indicators.md).")
    seed: str = Field(title="Riferimento seed", description="Righe del documento di programmazione.")

    @classmethod
    def of(cls, r: Row) -> IndicatorRow:
        return cls(code=r.code, title=r.title, grouping=r.grouping, grouping_label=GROUPING_LABELS[r.grouping],
                   key=r.key, label=r.label, numerator=r.numerator, denominator=r.denominator,
                   value=None if r.value is None else float(r.value),
                   unit=r.unit, target=r.target, target_value=r.target_value, status=r.status,
                   status_label=STATUS_LABELS[r.status], reading=r.reading, cutoff=r.cutoff,
                   reference=r.reference, seed=r.seed)


class IndicatorReport(BaseModel):
    year: int = Field(title="Anno", description="Anno solare, dal 1° gennaio 00:00 al 1° gennaio successivo "
                                                "00:00, ora italiana.")
    by: str = Field(title="Raggruppamento", description="Il raggruppamento chiesto.")
    ambito_id: uuid.UUID = Field(title="Ambito", description="L'Ambito di chi chiede.")
    ambito_name: str = Field(title="Nome dell'Ambito", description="Nome dell'Ambito.")
    rows: list[IndicatorRow] = Field(title="Righe", description="Una riga per indicatore e gruppo; l'ultima riga "
                                                                "di ogni indicatore è il totale d'Ambito.")

    @classmethod
    def of(cls, rep: Report) -> IndicatorReport:
        return cls(year=rep.year, by=rep.by, ambito_id=rep.ambito_id, ambito_name=rep.ambito_name,
                   rows=[IndicatorRow.of(r) for r in rep.rows])


def _it_number(v: Decimal | None) -> str:
    return "" if v is None else f"{v}".replace(".", ",")


def table_rows(rep: Report, *, native: bool = False) -> list[list]:
    """The rows of the CSV (Italian decimals as text) or of the XLSX (`native`: numbers stay numbers)."""
    out = []
    for r in rep.rows:
        value = (float(r.value) if native and r.value is not None else
                 None if native else _it_number(r.value))
        cutoff = r.cutoff.astimezone(ROME).strftime("%d/%m/%Y %H:%M") if r.cutoff else ""
        out.append([r.code, r.title, GROUPING_LABELS[r.grouping], r.label, r.numerator,
                    "" if r.denominator is None else r.denominator, value, r.target or "",
                    STATUS_LABELS[r.status], READING_LABELS[r.reading], cutoff, r.seed, r.reference])
    return out


def to_html(rep: Report) -> str:
    """A printable page (A4 landscape, Italian labels and decimals): the same rows as the CSV."""
    cells = table_rows(rep)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in CSV_HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in cells)
    title = f"Indicatori LEPS e del Piano di Zona {rep.year} — {html.escape(rep.ambito_name)}"
    return f"""<!doctype html><html lang="it"><head><meta charset="utf-8"><title>{title}</title>
<style>@page {{ size: A4 landscape; margin: 12mm; }} body {{ font-family: sans-serif; font-size: 8pt; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border: 1px solid #999; padding: 1.2mm; text-align: left; vertical-align: top; }}
thead {{ display: table-header-group; }} tr {{ page-break-inside: avoid; }}</style></head>
<body><h1>{title}</h1><p>Raggruppamento: {html.escape(GROUPING_LABELS.get(rep.by, rep.by))}. Anno dal 1° gennaio al
31 dicembre, ora italiana. «&lt;5»: conteggio da 1 a 4; «n.d.»: nascosto per proteggere un'altra cella.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>"""


# ---------------------------------------------------------------------------------------------------- yearly report
class TrendPoint(BaseModel):
    year: int = Field(title="Anno", description="Anno solare.")
    numerator: int | str = Field(title="Numeratore", description="Conteggio, «<5» o «n.d.».")
    denominator: int | str | None = Field(title="Denominatore", description="Come il numeratore; nullo per un "
                                                                            "conteggio.")
    value: float | None = Field(title="Valore", description="Il valore dell'anno (nullo se nascosto o non "
                                                            "calcolabile).")
    target: str | None = Field(title="Obiettivo", description="L'obiettivo dell'anno, se c'è.")
    status: str = Field(title="Esito", description="met, not_met, no_target, not_computable, withheld.")


class IndicatorTrend(BaseModel):
    code: str = Field(title="Codice", description="Codice dell'indicatore.")
    title: str = Field(title="Indicatore", description="Titolo in italiano.")
    unit: str = Field(title="Unità", description="percent, ratio, count o days.")
    seed: str = Field(title="Riferimento seed", description="Righe del documento di programmazione.")
    reference: str = Field(title="Definizione", description="Dove è definito l'indicatore.")
    points: list[TrendPoint] = Field(title="Andamento", description="Un punto per anno, dal più vecchio.")


class LepsReportPublic(BaseModel):
    year: int = Field(title="Anno", description="L'anno del rendiconto.")
    years: list[int] = Field(title="Anni", description="Gli anni dell'andamento (fino a tre).")
    ambito_name: str = Field(title="Ambito", description="Nome dell'Ambito.")
    indicators: list[IndicatorTrend] = Field(title="Indicatori", description="Ogni indicatore con l'andamento.")

    @classmethod
    def of(cls, rep: LepsReport) -> LepsReportPublic:
        return cls(year=rep.year, years=rep.years, ambito_name=rep.ambito_name, indicators=[IndicatorTrend(
            code=t.definition.code, title=t.definition.title, unit=t.definition.unit, seed=t.definition.seed,
            reference=t.definition.reference, points=[TrendPoint(
                year=y, numerator=r.numerator, denominator=r.denominator,
                value=None if r.value is None else float(r.value), target=r.target, status=r.status)
                for y, r in t.points]) for t in rep.trends])


LEPS_HEADERS = ["Codice", "Indicatore", "Anno", "Numeratore", "Denominatore", "Valore", "Obiettivo", "Esito",
                "Riferimento seed"]


def leps_rows(rep: LepsReport) -> list[list]:
    """One row per indicator and year, for the XLSX (numbers stay numbers)."""
    return [[t.definition.code, t.definition.title, y, r.numerator, "" if r.denominator is None else r.denominator,
             None if r.value is None else float(r.value), r.target or "", STATUS_LABELS[r.status], t.definition.seed]
            for t in rep.trends for y, r in t.points]


def _shown_value(value: Decimal | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "percent":
        return f"{value * 100:.1f}%".replace(".", ",")
    return f"{value.normalize():f}".replace(".", ",")


def _missing(r: Row) -> str:
    return "n.d." if r.status == "withheld" else "—"  # hidden to protect a cell, or no denominator


def chart_svg(t: Trend) -> str:
    """A bar per year (the value; a hidden one is a grey stub marked «n.d.», an incomputable one «—») and the
    target as a dashed line: drawn on the server, no script."""
    width, height, pad = 240, 120, 20
    values = [r.value for _, r in t.points]
    targets = [r.target_value for _, r in t.points if r.target_value is not None]
    top = max([float(v) for v in values if v is not None] + targets + [1.0 if t.definition.unit == "percent" else 0])
    top = top or 1.0
    bar_w = (width - 2 * pad) / max(1, len(t.points)) * 0.6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(t.definition.title)}">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#333"/>']
    step = (width - 2 * pad) / max(1, len(t.points))
    for i, (year, r) in enumerate(t.points):
        x = pad + i * step + (step - bar_w) / 2
        if r.value is None:
            parts.append(f'<rect x="{x:.1f}" y="{height - pad - 4}" width="{bar_w:.1f}" height="4" fill="#bbb"/>')
        else:
            h = (height - 2 * pad) * float(r.value) / top
            parts.append(f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="#3b6ea5"/>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" font-size="9" text-anchor="middle">{year}'
                     f'</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{pad - 6}" font-size="9" text-anchor="middle">'
                     f'{html.escape(_shown_value(r.value, r.unit) if r.value is not None else _missing(r))}</text>')
        if r.target_value is not None:
            y = height - pad - (height - 2 * pad) * r.target_value / top
            parts.append(f'<line x1="{x - 2:.1f}" y1="{y:.1f}" x2="{x + bar_w + 2:.1f}" y2="{y:.1f}" '
                         f'stroke="#c0392b" stroke-dasharray="3,2"/>')
    parts.append("</svg>")
    return "".join(parts)


def leps_html(rep: LepsReport) -> str:
    """The yearly report as a printable page: per indicator its numbers over the years, the targets, a chart."""
    title = f"Rendiconto LEPS e Piano di Zona {rep.year} — {html.escape(rep.ambito_name)}"
    sections = []
    for t in rep.trends:
        head = "".join(f"<th>{y}</th>" for y in rep.years)

        def line(label: str, cell, points=t.points) -> str:
            return f"<tr><th>{label}</th>" + "".join(
                f"<td>{html.escape(str(cell(r)))}</td>" for _, r in points) + "</tr>"

        table = (f"<table><thead><tr><th></th>{head}</tr></thead><tbody>"
                 + line("Numeratore", lambda r: r.numerator)
                 + (line("Denominatore", lambda r: r.denominator) if t.definition.kind == "ratio" else "")
                 + line("Valore", lambda r: _shown_value(r.value, r.unit))
                 + line("Obiettivo", lambda r: r.target or "—")
                 + line("Esito", lambda r: STATUS_LABELS[r.status]) + "</tbody></table>")
        sections.append(f'<section><h2>{html.escape(t.definition.code)} — {html.escape(t.definition.title)}</h2>'
                        f'<p class="ref">Seed {html.escape(t.definition.seed)}; definizione: '
                        f'{html.escape(t.definition.reference)}</p><div class="row">{table}{chart_svg(t)}</div>'
                        f'</section>')
    return f"""<!doctype html><html lang="it"><head><meta charset="utf-8"><title>{title}</title>
<style>@page {{ size: A4; margin: 12mm; }} body {{ font-family: sans-serif; font-size: 9pt; }}
table {{ border-collapse: collapse; margin-right: 6mm; }} th, td {{ border: 1px solid #999; padding: 1.2mm; }}
section {{ page-break-inside: avoid; margin-bottom: 5mm; }} .row {{ display: flex; align-items: flex-start; }}
.ref {{ color: #555; }}</style></head>
<body><h1>{title}</h1><p>Anni {rep.years[0]}-{rep.years[-1]}, dal 1° gennaio al 31 dicembre, ora italiana; totali
d'Ambito. «&lt;5»: conteggio da 1 a 4; «n.d.»: nascosto per proteggere un'altra cella. Regole di conteggio:
docs/indicators.md.</p>{"".join(sections)}</body></html>"""


class PersonsBehindPublic(BaseModel):
    code: str = Field(title="Indicatore", description="Codice dell'indicatore.")
    part: str = Field(title="Parte", description="numerator o denominator.")
    grouping: str = Field(title="Raggruppamento", description="Il raggruppamento della cella.")
    key: str | None = Field(title="Gruppo", description="Il gruppo della cella (nullo: l'Ambito o «non attribuito»).")
    person_ids: list[uuid.UUID] = Field(title="Persone", description="Le persone contate nella cella che chi chiede "
                                                                     "raggiunge (ciascuna si legge da "
                                                                     "/api/persons/{id}).")
    truncated: bool = Field(title="Troncato", description="Vero se le persone sono più del limite.")

    @classmethod
    def of(cls, p: PersonsBehind) -> PersonsBehindPublic:
        return cls(code=p.code, part=p.part, grouping=p.grouping, key=p.key, person_ids=p.person_ids,
                   truncated=p.truncated)
