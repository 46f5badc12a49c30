"""Writing a table for a person to open: CSV (UTF-8 with BOM and `;`, which a spreadsheet set to Italian opens as
columns) or XLSX."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(headers)
    w.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "Foglio1") -> bytes:
    import openpyxl  # only XLSX needs it, and loading it costs a third of a second

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    ws.append(list(headers))
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
