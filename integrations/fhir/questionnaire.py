"""Questionnaire ⇄ an assessment instrument (versioned definitions in schemas/instruments/), and
QuestionnaireResponse ⇄ the answers recorded with one version.

A Questionnaire's id is the instrument code with dashes and its version (`lawton-iadl-1`: FHIR ids allow no `_`);
its canonical url is per instrument, `version` the version. Options carry their points as `ordinalValue`. Answers
are coded with a code system per item (`.../CodeSystem/strumento/<code>/<item>`). The server's scores travel with
the response as an extension; they are recomputed on the way in, never taken from the sender.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from domain.kernel.errors import Invalid
from integrations.fhir import common, r4, systems
from schemas.instruments import InstrumentDefinition

TYPES = {"single_choice": "choice", "multiple_choice": "choice", "integer": "integer", "boolean": "boolean",
         "text": "text", "date": "date"}


def questionnaire_id(code: str, version: int) -> str:
    return f"{code.replace('_', '-')}-{version}"


def parse_id(fhir_id: str) -> tuple[str, int]:
    """`lawton-iadl-1` → ("lawton_iadl", 1); `Invalid` for anything else."""
    head, _, version = fhir_id.rpartition("-")
    if not head or not version.isdigit():
        raise Invalid("id", "atteso <strumento>-<versione>, es. barthel-1")
    return head.replace("-", "_"), int(version)


def canonical(code: str) -> str:
    return f"{systems.BASE}/Questionnaire/{code}"


def option_system(code: str, item: str) -> str:
    return f"{systems.INSTRUMENT_OPTION}/{code}/{item}"


def to_fhir(d: InstrumentDefinition) -> Questionnaire:
    items = []
    for it in d.items:
        kind = str(it.type)
        q: dict[str, Any] = {"linkId": it.id, "text": it.label, "type": TYPES[kind], "required": it.required}
        if kind == "multiple_choice":
            q["repeats"] = True
        if it.options:
            q["answerOption"] = [{"valueCoding": {"system": option_system(d.code, it.id), "code": o.code,
                                                  "display": o.label},
                                  **({"extension": [{"url": systems.ORDINAL_VALUE, "valueDecimal": float(o.points)}]}
                                     if o.points is not None else {})} for o in it.options]
        extensions = []
        if kind == "integer" and it.min is not None:
            extensions.append({"url": systems.MIN_VALUE, "valueInteger": it.min})
        if kind == "integer" and it.max is not None:
            extensions.append({"url": systems.MAX_VALUE, "valueInteger": it.max})
        if extensions:
            q["extension"] = extensions
        if kind == "text":
            q["maxLength"] = it.max_length
        items.append(q)
    res: dict[str, Any] = {
        "resourceType": "Questionnaire", "id": questionnaire_id(d.code, d.version), "url": canonical(d.code),
        "version": str(d.version), "name": d.code, "title": d.title,
        "status": "active" if str(d.status) == "active" else "retired", "item": items}
    if d.description:
        res["description"] = d.description
    return Questionnaire.model_validate(res)


def response_to_fhir(r: Any, *, masked: bool = False) -> QuestionnaireResponse:
    """From an `InstrumentResponse` row. `masked`: the reader may see the scores, not the answers."""
    res: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse", "id": str(r.id), "status": "completed",
        "questionnaire": f"{canonical(r.instrument_code)}|{r.instrument_version}",
        "subject": common.ref("Patient", r.person_id), "authored": common.iso(r.recorded_at),
        "author": {"identifier": {"system": systems.USER, "value": str(r.author_id)}}}
    scores = []
    for code, s in ((r.scores or {}).get("scores") or {}).items():  # a stored ScoreResult
        parts = [{"url": "codice", "valueCode": code}, {"url": "valore", "valueDecimal": float(s["value"])}]
        if s.get("band"):
            parts.append({"url": "fascia", "valueCode": s["band"]["code"]})
        scores.append({"url": systems.INSTRUMENT_SCORE, "extension": parts})
    if scores:
        res["extension"] = scores
    if not masked:
        items = [_answer_item(r.instrument_code, link_id, value) for link_id, value in (r.answers or {}).items()
                 if value is not None]
        if items:
            res["item"] = items
    return QuestionnaireResponse.model_validate(res)


def _answer_item(code: str, link_id: str, value: Any) -> dict[str, Any]:
    values = value if isinstance(value, list) else [value]
    answers = []
    for v in values:
        if isinstance(v, bool):
            answers.append({"valueBoolean": v})
        elif isinstance(v, int):
            answers.append({"valueInteger": v})
        elif isinstance(v, date):
            answers.append({"valueDate": v.isoformat()})
        elif isinstance(v, str) and _is_code(v):
            answers.append({"valueCoding": {"system": option_system(code, link_id), "code": v}})
        else:
            answers.append({"valueString": str(v)})
    return {"linkId": link_id, "answer": answers}


def _is_code(v: str) -> bool:
    return bool(v) and v[0].isalpha() and v.replace("_", "").isalnum() and v.lower() == v


def response_from_fhir(data: dict[str, Any] | QuestionnaireResponse, definition: InstrumentDefinition
                       ) -> dict[str, Any]:
    """The answers as the instrument engine takes them ({item id: value}), typed by the definition."""
    qr = data if isinstance(data, QuestionnaireResponse) else r4.parse(data, expected="QuestionnaireResponse")
    expected = f"{canonical(definition.code)}|{definition.version}"
    if qr.questionnaire != expected:
        raise Invalid("QuestionnaireResponse.questionnaire", f"atteso {expected}")
    answers: dict[str, Any] = {}
    for i, item in enumerate(qr.item or []):
        spec = definition.item(item.linkId)
        where = f"QuestionnaireResponse.item[{i}]"
        if spec is None:
            raise Invalid(f"{where}.linkId", f"voce sconosciuta nello strumento {definition.code}")
        values = []
        for j, a in enumerate(item.answer or []):
            if a.valueCoding is not None:
                if a.valueCoding.system != option_system(definition.code, item.linkId):
                    raise Invalid(f"{where}.answer[{j}].valueCoding.system",
                                  f"atteso {option_system(definition.code, item.linkId)}")
                values.append(a.valueCoding.code)
            else:
                for attr in ("valueBoolean", "valueInteger", "valueDate", "valueString"):
                    v = getattr(a, attr)
                    if v is not None:
                        values.append(v)
                        break
        answers[item.linkId] = values if str(spec.type) == "multiple_choice" else (values[0] if values else None)
    return answers
