"""The PDF renderer on its own: A4 pages with text, with the machine's Unicode font or, without one (a slim
container), with the standard Helvetica and the few characters outside Latin-1 written in ASCII."""
import io

import pytest
from pypdf import PdfReader

from domain.care_plan import pdf
from domain.care_plan.printing import HEADINGS, SIGNATURE_NOTE, version_labels


def _doc(**kw):
    version, agreed = version_labels({"agreed_version": 6, "agreed_at": "2026-03-02T10:00:00+01:00"}, 7,
                                     "2026-03-03T09:00:00+01:00")
    return {"title": "Progetto individualizzato - Bianchi Maria", "kind": "Progetto individualizzato",
            "state": "Attivato", "ambito_name": "Ambito di Crema", "version": 7, "version_label": version,
            "agreed_label": agreed, "draft_warning": None,
            "person": [("Cognome e nome", "Bianchi Maria"), ("Codice fiscale", "BNCMRA43E50D142X")],
            "plan": [("Titolo", "Sostegno dell’AS al domicilio")], "summary": "Contributo di 120 € al mese.",
            "vmd": {"heading": "VMD conclusa il 02/03/2026", "scores": [("Indice di Barthel", "Totale", "35/100",
                                                                        "Dipendenza grave")]},
            "goals": [("1", "Autonomia", "Barthel", "Barthel ≥ 45", "01/09/2026", "Aperto")], "interventions": [],
            "signatories": [("Persona interessata", "Maria Bianchi", "")], "signature_note": SIGNATURE_NOTE,
            "headings": HEADINGS, "footer": f"Progetto individualizzato - {version}", **kw}


def _text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, " ".join(" ".join(p.extract_text().split()) for p in reader.pages)


def test_version_labels_name_this_version_and_the_signed_one():
    assert version_labels({"agreed_version": 6, "agreed_at": "2026-03-02T10:00:00+01:00"}, 7,
                          "2026-03-03T09:00:00+01:00") == ("Versione n. 7 del 03/03/2026",
                                                           "Sottoscritto il 02/03/2026 (versione n. 6)")
    assert version_labels({}, 2, "2026-03-03T09:00:00+01:00")[1] == "Non ancora sottoscritto"


@pytest.mark.parametrize("fonts", ["machine", "none"])
def test_a4_pdf_with_text_with_or_without_a_unicode_font(fonts, monkeypatch):
    if fonts == "none":
        monkeypatch.setattr(pdf, "FONT_DIRS", ())
    elif pdf._unicode_fonts() is None:
        pytest.skip("no DejaVu or Liberation font on this machine")
    reader, text = _text(pdf.render(_doc()))
    box = reader.pages[0].mediabox
    assert abs(float(box.width) - 595) <= 1 and abs(float(box.height) - 842) <= 1
    assert "Cognome e nome Bianchi Maria" in text and "Versione n. 7 del 03/03/2026" in text
    if fonts == "none":
        assert "dell'AS" in text and "120 EUR" in text and "Barthel >= 45" in text
    else:
        assert "dell’AS" in text and "120 €" in text and "Barthel ≥ 45" in text
