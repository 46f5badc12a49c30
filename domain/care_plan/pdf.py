"""The printable plan as an A4 PDF (fpdf2, pure Python): the same document as the HTML print (printing.py), laid out
for paper with tables that break across pages, and the version on every page's footer.

Text is set in DejaVu Sans (or Liberation Sans) when the machine has it, so every Italian character, the euro
sign, typographic apostrophes and "≥" print as typed; without those fonts the PDF uses the standard Helvetica and
writes the few characters outside Latin-1 as their closest ASCII ("’" → "'", "€" → "EUR", "≥" → ">=").
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF",
             "/usr/share/fonts/truetype/liberation", "/usr/share/fonts/liberation", "/usr/local/share/fonts",
             "/Library/Fonts", "C:/Windows/Fonts")
FONT_FILES = (("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"), ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"))
_ASCII = {"’": "'", "‘": "'", "“": '"', "”": '"', "€": "EUR", "≥": ">=", "≤": "<=", "–": "-", "—": "-",
          "…": "...", "•": "-"}

MARGIN = 15  # mm
WIDTH = 210 - 2 * MARGIN


def _unicode_fonts() -> tuple[Path, Path] | None:
    for regular, bold in FONT_FILES:
        for d in FONT_DIRS:
            r, b = Path(d) / regular, Path(d) / bold
            if r.is_file() and b.is_file():
                return r, b
    return None


class _Paper(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        fonts = _unicode_fonts()
        self.unicode = fonts is not None
        if fonts is not None:
            self.add_font("doc", "", str(fonts[0]))
            self.add_font("doc", "B", str(fonts[1]))
            self.doc_font = "doc"
        else:
            self.doc_font = "helvetica"
        self.set_margins(MARGIN, 18, MARGIN)
        self.set_auto_page_break(True, margin=20)

    def t(self, value: Any) -> str:
        text = "" if value is None else str(value)
        if self.unicode:
            return text
        for k, v in _ASCII.items():
            text = text.replace(k, v)
        return text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(self.doc_font, "", 8)
        self.cell(0, 5, self.t(f"{self.footer_text} - pagina {self.page_no()} di {{nb}}"), align="C")

    # ------------------------------------------------------------------------------------------------ blocks
    def line_of(self, text: str, size: float = 9, style: str = "", height: float = 5) -> None:
        self.set_font(self.doc_font, style, size)
        self.multi_cell(WIDTH, height, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        if self.will_page_break(20):
            self.add_page()
        self.ln(3)
        self.line_of(text, 11.5, "B", 7)
        self.ln(1)

    def pairs(self, rows: list[tuple[str, str]]) -> None:
        self.set_font(self.doc_font, "", 9.5)
        with self.table(col_widths=(52, WIDTH - 52), width=WIDTH, first_row_as_headings=False,
                        borders_layout="NONE", text_align="LEFT", line_height=5.2, padding=(0.6, 1)) as table:
            for key, value in rows:
                row = table.row()
                row.cell(self.t(key), style=FontFace(emphasis="BOLD"))
                row.cell(self.t(value))

    def grid(self, headings: tuple[str, ...], rows: list[tuple[str, ...]], widths: tuple[float, ...],
             empty: str) -> None:
        if not rows:
            self.set_font(self.doc_font, "", 9)
            self.line_of(empty, 9)
            return
        self.set_font(self.doc_font, "", 8.5)
        with self.table(col_widths=widths, width=WIDTH, text_align="LEFT", line_height=4.6, padding=1,
                        headings_style=FontFace(family=self.doc_font, emphasis="BOLD", fill_color=(235, 235, 235)),
                        repeat_headings=1) as table:
            for row_values in (headings, *rows):
                row = table.row()
                for value in row_values:
                    row.cell(self.t(value))


def render(doc: dict[str, Any]) -> bytes:
    """The document of printing.print_document as PDF bytes (A4 portrait)."""
    pdf = _Paper(doc["footer"])
    pdf.set_title(pdf.t(doc["title"]))
    pdf.set_author(pdf.t(doc["ambito_name"] or "PUA"))
    pdf.set_creator("PUA - Ambito di Crema")
    pdf.add_page()
    pdf.line_of(doc["kind"], 15, "B", 8)
    pdf.line_of(doc["ambito_name"], 9)
    pdf.line_of(f"{doc['version_label']} - {doc['agreed_label']} - Stato: {doc['state']}", 9)
    if doc["draft_warning"]:
        pdf.line_of(doc["draft_warning"], 9, "B")
    pdf.set_line_width(0.5)
    pdf.line(MARGIN, pdf.get_y() + 1.5, MARGIN + WIDTH, pdf.get_y() + 1.5)
    pdf.ln(3)

    pdf.heading("Persona")
    pdf.pairs(doc["person"])
    pdf.heading("Progetto")
    pdf.pairs(doc["plan"])
    if doc["summary"]:
        pdf.heading("Sintesi dei bisogni e del progetto")
        pdf.line_of(doc["summary"], 9.5)
    if doc["vmd"]:
        pdf.heading("Valutazione multidimensionale (VMD)")
        pdf.line_of(doc["vmd"]["heading"], 9.5)
        pdf.ln(1)
        pdf.grid(doc["headings"]["vmd"], doc["vmd"]["scores"], (70, 50, 20, 40), "Nessun punteggio disponibile.")
    pdf.heading("Obiettivi")
    pdf.grid(doc["headings"]["goals"], doc["goals"], (8, 55, 40, 37, 20, 20), "Nessun obiettivo indicato.")
    pdf.heading("Interventi")
    pdf.grid(doc["headings"]["interventions"], doc["interventions"], (36, 30, 26, 30, 19, 19, 20),
             "Nessun intervento indicato.")

    pdf.heading("Firme")
    pdf.line_of(doc["signature_note"], 9)
    pdf.ln(1)
    rows = [(role, f"{name}\n{organisation}" if organisation else name, "\n\n", "")
            for role, name, organisation in doc["signatories"]]
    pdf.grid(doc["headings"]["signatures"], rows, (50, 55, 50, 25), "")
    return bytes(pdf.output())
