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
from domain.reporting.service import GROUPING_LABELS, READING_LABELS, STATUS_LABELS, Report, Row

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
