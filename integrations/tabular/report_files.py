"""The reports as files (CSV, XLSX, printable HTML): one writer for the synchronous routes and the export jobs, so
an export's file is the synchronous route's answer for the same question."""
from __future__ import annotations

from domain.reporting.exports import ExportFile
from domain.reporting.service import LepsReport, Report
from integrations.tabular import writer
from schemas.reports import CSV_HEADERS, LEPS_HEADERS, leps_html, leps_rows, table_rows, to_html

HTML_MEDIA_TYPE = "text/html; charset=utf-8"


def indicator_file(rep: Report, fmt: str) -> ExportFile:
    name = f"indicatori-{rep.year}-{rep.by}.{fmt}"
    if fmt == "csv":
        return ExportFile(writer.to_csv(CSV_HEADERS, table_rows(rep)), writer.CSV_MEDIA_TYPE, name)
    if fmt == "xlsx":
        return ExportFile(writer.to_xlsx(CSV_HEADERS, table_rows(rep, native=True), title=f"Indicatori {rep.year}"),
                          writer.XLSX_MEDIA_TYPE, name)
    if fmt == "html":
        return ExportFile(to_html(rep).encode(), HTML_MEDIA_TYPE, name)
    raise ValueError(f"unknown format {fmt!r}")


def leps_file(rep: LepsReport, fmt: str) -> ExportFile:
    name = f"rendiconto-leps-{rep.year}.{fmt}"
    if fmt == "xlsx":
        return ExportFile(writer.to_xlsx(LEPS_HEADERS, leps_rows(rep), title=f"LEPS {rep.year}"),
                          writer.XLSX_MEDIA_TYPE, name)
    if fmt == "html":
        return ExportFile(leps_html(rep).encode(), HTML_MEDIA_TYPE, name)
    raise ValueError(f"unknown format {fmt!r}")


def render(what: str, rep: Report | LepsReport, fmt: str) -> ExportFile:
    """`domain.reporting.exports.Render`: the file of an export job."""
    return indicator_file(rep, fmt) if what == "indicators" else leps_file(rep, fmt)
