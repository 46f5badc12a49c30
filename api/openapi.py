"""The OpenAPI document and the documentation pages, customised in one place (called once by api/main.py).

- Every /api operation that needs a token declares the `bearerAuth` scheme (Swagger shows "Authorize").
- Every operation declares the errors it can answer, all with the one `Problem` schema under
  `application/problem+json` (schemas/problem.py, what api/errors.py sends): 401 and 403 on every authenticated
  route, 404 on routes with path ids or a body, 409 on the ones that change state, 422 on the ones with a body or
  parameters, 413 on the ones with a body (api/hardening.py), 400 on the ones with a `cursor` (query or body), 503
  with `Retry-After` on every authenticated route (the database unavailable), 507 on the ones that write files
  (a full volume); a route declares the others itself (429 of the person search). FastAPI's `HTTPValidationError`
  is gone.
- Every tag has an Italian description; every path and query parameter an Italian title and description (the
  glossary below, unless the route gives its own).
- Request bodies show the examples of their schema (`json_schema_extra`), selectable in Swagger.
- /docs (Swagger UI) and /redoc load their JavaScript and CSS from the `fastapi-offline` package, served here:
  the intranets of the ASST and of the comuni reach no CDN. The pages carry no inline script.
"""
from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles

from schemas.problem import Problem

PROBLEM_MEDIA = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SECURITY_SCHEME = "bearerAuth"
ASSETS_URL = "/docs/assets"
ASSETS_DIR = files("fastapi_offline") / "static"
_TYPE = "https://pua.ambito-crema.example/problems/"

TAGS: list[dict[str, str]] = [
    {"name": "salute", "description": "Stato del servizio: processo vivo, database e broker raggiungibili. Senza "
                                      "token."},
    {"name": "amministrazione", "description": "Il mio profilo; utenti e client di sistema, ruoli per "
                                              "organizzazione, équipe e membri (amministratori)."},
    {"name": "territorio", "description": "Ambito, sub-ambiti, comuni, organizzazioni, unità d'offerta (UDO), "
                                          "catalogo dei servizi e fonti di finanziamento."},
    {"name": "persone", "description": "Anagrafica delle persone (codice fiscale o identificativo alternativo), "
                                       "persone di riferimento, possibili duplicati e unioni."},
    {"name": "cartelle", "description": "Cartelle sociali per area, case manager, trasferimenti tra comuni, "
                                        "assegnazioni e storico."},
    {"name": "pua", "description": "Punto Unico di Accesso: registrazione delle richieste, accoglienza, "
                                   "valutazione di primo livello, orientamento, invio a VMD o COT."},
    {"name": "strumenti di valutazione", "description": "Catalogo versionato degli strumenti (Barthel, IADL, "
                                                        "rischio sociale, triage PUA) e calcolo del punteggio."},
    {"name": "vmd", "description": "Valutazioni multidimensionali: richiesta, programmazione, valutatori, strumenti "
                                   "compilati, firme, riunione d'équipe, esito e rivalutazione."},
    {"name": "progetti individualizzati", "description": "Progetto individualizzato: obiettivi, interventi, "
                                                         "proposta, sottoscrizione con consenso, attivazione, "
                                                         "verifiche, chiusura, versioni e stampa."},
    {"name": "diario e allegati", "description": "Diario della cartella (colloqui, visite, telefonate, riunioni, "
                                                 "note) e allegati."},
    {"name": "accessi e consenso", "description": "Consensi della persona, accessi straordinari (break-glass), "
                                                  "registro degli accessi ai dati e tabella dei permessi."},
    {"name": "lavoro", "description": "Code di lavoro: le attività assegnate a me, alle mie équipe e alle mie "
                                      "organizzazioni."},
    {"name": "dimissioni protette", "description": "Dimissioni protette (LEPS): segnalazione del reparto, richiesta "
                                                   "alla COT con il termine di 48 ore, valutazione, progetto."},
    {"name": "liste d'attesa", "description": "Liste d'attesa RSA e delle altre unità d'offerta sociosanitarie: "
                                              "domanda e valutazione congiunta entro 30 giorni, decisione "
                                              "dell'équipe, urgenza, graduatorie calcolate alla lettura, posti "
                                              "liberi, offerte e ingresso."},
    {"name": "servizi", "description": "Servizi: accreditamento degli enti, ordini di attivazione dagli interventi "
                                       "del progetto, risposta dell'ente, avvio, sospensione, conclusione, registro "
                                       "delle prestazioni, previsto ed erogato, costo del progetto."},
    {"name": "misure", "description": "Misure (B1, B2, Dopo di Noi, Pro.Vi, voucher): catalogo, bandi con il "
                                     "budget, domande dalla valutazione alla conclusione, attesa di fondi in "
                                     "graduatoria."},
    {"name": "importazioni", "description": "Importazione di persone, persone di riferimento e cartelle aperte "
                                            "dalla piattaforma precedente (data steward): prova, resoconto, "
                                            "conferma."},
    {"name": "integrazione ASST", "description": "Messaggi FHIR verso ASST (VMD concluse, progetti attivati o "
                                                 "chiusi, dimissioni protette, liste d'attesa, consensi): stato, "
                                                 "tentativi, messaggi non recapitati da riprovare, messaggi "
                                                 "trattenuti senza consenso o base giuridica."},
    {"name": "indicatori", "description": "Indicatori LEPS e del Piano di Zona calcolati dai dati registrati: "
                                          "numeratore, denominatore, valore, obiettivo ed esito per anno, "
                                          "sub-ambito, comune e area; celle piccole protette; CSV e XLSX."},
    {"name": "sviluppo", "description": "Solo in sviluppo (DEV_MODE=true): l'orologio di prova per dimostrazioni, "
                                        "formazione e collaudi."},
]

# ---------------------------------------------------------------------------------------------------- parameters
# (where, name) -> (title, description). A description given by the route itself wins; the title is always set.
_ID = "Identificativo (UUID) "
PARAMETERS: dict[tuple[str, str], tuple[str, str]] = {
    ("path", "application_id"): ("Domanda", _ID + "della domanda di lista d'attesa."),
    ("path", "assignment_id"): ("Assegnazione", _ID + "dell'assegnazione."),
    ("path", "attachment_id"): ("Allegato", _ID + "dell'allegato."),
    ("path", "cartella_id"): ("Cartella", _ID + "della cartella sociale."),
    ("path", "code"): ("Codice", "Codice stabile, in minuscolo."),
    ("path", "comune_id"): ("Comune", _ID + "del comune (organizzazione di tipo comune)."),
    ("path", "consent_id"): ("Consenso", _ID + "del consenso."),
    ("path", "entry_id"): ("Voce di diario", _ID + "della voce di diario."),
    ("path", "goal_id"): ("Obiettivo", _ID + "dell'obiettivo del progetto."),
    ("path", "grant_id"): ("Accesso straordinario", _ID + "dell'accesso straordinario (break-glass)."),
    ("path", "import_id"): ("Importazione", _ID + "dell'importazione."),
    ("path", "intervention_id"): ("Intervento", _ID + "dell'intervento del progetto."),
    ("path", "item_id"): ("Attività", _ID + "dell'attività della coda di lavoro."),
    ("path", "match_id"): ("Coppia", _ID + "della coppia di possibili duplicati."),
    ("path", "member_id"): ("Appartenenza", _ID + "dell'appartenenza all'équipe."),
    ("path", "message_id"): ("Messaggio", _ID + "del messaggio verso ASST."),
    ("path", "offer_id"): ("Offerta", _ID + "dell'offerta di posto."),
    ("path", "org_id"): ("Organizzazione", _ID + "dell'organizzazione."),
    ("path", "person_id"): ("Persona", _ID + "della persona (un identificativo unito a un'altra persona porta "
                                             "alla persona mantenuta)."),
    ("path", "plan_id"): ("Progetto", _ID + "del progetto individualizzato."),
    ("path", "relation_id"): ("Relazione", _ID + "della relazione con la persona di riferimento."),
    ("path", "request_id"): ("Richiesta di accesso", _ID + "della richiesta di accesso al PUA."),
    ("path", "team_id"): ("Équipe", _ID + "dell'équipe."),
    ("path", "unit_id"): ("Unità d'offerta", _ID + "dell'unità d'offerta."),
    ("path", "user_id"): ("Utente", _ID + "dell'utente."),
    ("path", "version"): ("Versione", "Numero di versione (da 1)."),
    ("path", "vmd_id"): ("VMD", _ID + "della valutazione multidimensionale."),
    ("query", "active"): ("Attivi", "true: solo gli elementi attivi o in corso; false: solo quelli non attivi; "
                                    "assente: tutti."),
    ("query", "ambito"): ("Ambito", _ID + "dell'Ambito (predefinito: l'Ambito dell'utente)."),
    ("query", "before_at"): ("Prima di (data e ora)", "Paginazione all'indietro: data e ora (con fuso orario) "
                                                      "dell'ultima voce ricevuta; da usare con `before_id`."),
    ("query", "before_id"): ("Prima di (voce)", "Paginazione all'indietro: identificativo dell'ultima voce "
                                                "ricevuta; da usare con `before_at`."),
    ("query", "birth_date"): ("Data di nascita", "Data di nascita (AAAA-MM-GG)."),
    ("query", "category"): ("Categoria", "Categoria del servizio (es. domiciliare, economico)."),
    ("query", "channel"): ("Canale", "Canale di arrivo della richiesta (ripetibile)."),
    ("query", "codice_fiscale"): ("Codice fiscale", "Codice fiscale esatto."),
    ("query", "comune"): ("Comune", _ID + "del comune."),
    ("query", "comune_id"): ("Comune", _ID + "del comune."),
    ("query", "cursor"): ("Cursore", "Cursore opaco: il `next_cursor` della pagina precedente; assente per la "
                                     "prima pagina."),
    ("query", "format"): ("Formato", "Formato della risposta: json, csv (foglio di calcolo) o html (stampabile)."),
    ("query", "kind"): ("Tipo", "Tipo dell'elemento cercato."),
    ("query", "leps"): ("LEPS", "true: solo i servizi che sono Livelli Essenziali delle Prestazioni Sociali."),
    ("query", "limit"): ("Numero massimo", "Quanti elementi al massimo in una pagina."),
    ("query", "operator"): ("Ente gestore", _ID + "dell'ente gestore."),
    ("query", "organisation_id"): ("Organizzazione", _ID + "dell'organizzazione."),
    ("query", "part_of"): ("Appartenenza diretta", _ID + "dell'organizzazione di cui sono parte diretta."),
    ("query", "person_id"): ("Persona", _ID + "della persona."),
    ("query", "provisional"): ("Provvisorio", "true: solo le assegnazioni al sub-ambito provvisorie; false: solo "
                                              "quelle confermate."),
    ("query", "q"): ("Testo", "Testo da cercare."),
    ("query", "registered_from"): ("Registrate dal", "Data di registrazione minima, compresa (AAAA-MM-GG)."),
    ("query", "registered_to"): ("Registrate fino al", "Data di registrazione massima, compresa (AAAA-MM-GG)."),
    ("query", "role"): ("Ruolo", "Solo gli utenti con questo ruolo attivo."),
    ("query", "state"): ("Stato", "Stato (ripetibile dove indicato)."),
    ("query", "status"): ("Stato", "Stato della cartella: open (aperta) o closed (chiusa)."),
    ("query", "sub_ambito"): ("Sub-ambito", _ID + "del sub-ambito."),
    ("query", "sub_ambito_id"): ("Sub-ambito", _ID + "del sub-ambito."),
    ("query", "total"): ("Totale", "true: calcola anche il totale (più lento)."),
    ("query", "type"): ("Tipo", "Tipo di équipe."),
    ("query", "udo_type"): ("Tipologia di UDO", "Codice della tipologia di unità d'offerta (es. rsa, cdi)."),
    ("query", "under"): ("Discendenza", _ID + "di un'organizzazione: tutte quelle che ne fanno parte, a ogni "
                                              "livello."),
    ("query", "version"): ("Versione", "Numero di versione da stampare (predefinita: quella attuale)."),
}
# The same name means something else on some routes: (path prefix, where, name) -> description.
PARAMETER_OVERRIDES: dict[tuple[str, str, str], str] = {
    ("/api/catalogue/service-types/", "path", "code"): "Codice del tipo di servizio (es. sad).",
    ("/api/catalogue/funding-sources/", "path", "code"): "Codice della fonte di finanziamento (es. fna).",
    ("/api/care-plans/", "path", "version"): "Numero di versione del progetto (da 1): vedi l'elenco delle versioni.",
    ("/api/organisations", "query", "kind"): "Tipo di organizzazione (comune, asst, ets...).",
    ("/api/admin/users", "query", "kind"): "person: operatori; system: client di sistema.",
    ("/api/admin/users", "query", "q"): "Inizio dello username o parte del nome visualizzato.",
    ("/api/work-items/mine", "query", "kind"): "Tipo di attività (ripetibile), es. pua.triage, vmd.assessment, "
                                               "care_plan.review, diary.follow_up.",
    ("/api/pua/requests", "query", "state"): "Stato della richiesta (ripetibile).",
    ("/api/pua/requests", "query", "person_id"): _ID + "della persona: solo le sue richieste.",
    ("/api/cartelle/", "query", "state"): "Stato del progetto.",
    ("/api/admin/users", "query", "active"): "true: solo gli utenti attivi; false: solo quelli disattivati.",
    ("/api/catalogue/", "query", "active"): "true (predefinito): solo le voci attive; false: solo quelle "
                                            "disattivate.",
}

# ---------------------------------------------------------------------------------------------------- errors
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Cursore non valido o scaduto: ripartire dalla prima pagina.",
          {"type": _TYPE + "invalid_cursor", "title": "Cursore non valido", "status": 400,
           "detail": "cursor: cursore non valido o scaduto: ripartire dalla prima pagina",
           "errors": [{"field": "cursor", "reason": "cursore non valido o scaduto: ripartire dalla prima pagina"}]}),
    401: ("Token mancante, non valido o scaduto (intestazione `WWW-Authenticate: Bearer`).",
          {"type": _TYPE + "unauthenticated", "title": "Autenticazione richiesta", "status": 401,
           "detail": "Token di accesso mancante, non valido o scaduto."}),
    403: ("Permesso mancante (`missing` elenca i permessi), persona fuori dal proprio ambito di competenza o "
          "consenso necessario (`…/problems/consent_required`).",
          {"type": _TYPE + "forbidden", "title": "Operazione non consentita", "status": 403,
           "detail": "Permesso mancante: person.update", "missing": ["person.update"]}),
    404: ("Risorsa inesistente o non visibile all'utente (di un altro Ambito), nel percorso o indicata nel corpo.",
          {"type": _TYPE + "not_found", "title": "Risorsa non trovata", "status": 404,
           "detail": "Persona non trovata."}),
    409: ("Conflitto con lo stato attuale: azione non ammessa nello stato (`state`, `action`, `allowed_actions`), "
          "versione cambiata nel frattempo o dato già registrato (`existing_id`).",
          {"type": _TYPE + "conflict", "title": "Conflitto con lo stato attuale", "status": 409,
           "detail": "Azione 'activate' non ammessa nello stato 'draft'.", "state": "draft", "action": "activate",
           "allowed_actions": ["propose", "revoke"]}),
    413: ("Corpo della richiesta oltre la dimensione massima di questa operazione (rifiutato prima di leggerlo).",
          {"type": _TYPE + "http-413", "title": "Contenuto troppo grande", "status": 413,
           "detail": "Il corpo della richiesta supera la dimensione massima consentita per questa operazione "
                     "(1048576 byte)."}),
    422: ("Dati non validi: `errors` elenca tutti i campi non validi, ciascuno con il motivo e come correggerlo.",
          {"type": _TYPE + "invalid", "title": "Dati non validi", "status": 422,
           "detail": "birth_date: data non valida: usare il formato AAAA-MM-GG (es. 2026-03-02)",
           "errors": [{"field": "birth_date", "in": "body",
                       "reason": "data non valida: usare il formato AAAA-MM-GG (es. 2026-03-02)"}]}),
    503: ("Database momentaneamente non raggiungibile (riavvio, manutenzione): nulla è stato registrato; riprovare "
          "dopo i secondi di `Retry-After`.",
          {"type": _TYPE + "unavailable", "title": "Servizio temporaneamente non disponibile", "status": 503,
           "detail": "Il database non risponde (riavvio o manutenzione): la richiesta non è stata registrata. "
                     "Riprovare tra qualche secondo."}),
    507: ("Spazio di archiviazione esaurito sul server: il file non è stato salvato né prodotto, nulla è stato "
          "registrato; riprovare più tardi.",
          {"type": _TYPE + "insufficient_storage", "title": "Spazio di archiviazione esaurito", "status": 507,
           "detail": "file: spazio di archiviazione esaurito sul server: l'allegato non è stato salvato, riprovare "
                     "più tardi",
           "errors": [{"field": "file", "reason": "spazio di archiviazione esaurito sul server: l'allegato non è "
                                                  "stato salvato, riprovare più tardi"}]}),
}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "Schema di autenticazione richiesto: `Bearer`.",
                                          "schema": {"type": "string", "example": "Bearer"}}}
_RETRY_AFTER = {"Retry-After": {"description": "Secondi dopo i quali riprovare (DB_RETRY_AFTER_SECONDS).",
                                "schema": {"type": "integer", "example": 5}}}
# Operations that write a file or need scratch space on disk: a full volume answers 507 (docs/operations.md).
WRITES_FILES = {("post", "/api/cartelle/{cartella_id}/attachments"), ("get", "/api/imports/template"),
                ("get", "/api/imports/{import_id}/report")}
SUCCESS = {"200": "Operazione riuscita.", "201": "Creato.", "204": "Operazione riuscita, nessun contenuto."}
# POSTs that change nothing (a search, a score preview): no 409.
READ_ONLY_POSTS = {"/api/persons/duplicates-check", "/api/persons/search", "/api/instruments/{code}/score"}
CHANGING_METHODS = {"post", "put", "patch", "delete"}


def _problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    default, example = _ERRORS[status]
    out: dict[str, Any] = {"description": description or default,
                           "content": {PROBLEM_MEDIA: {"schema": PROBLEM_REF, "example": example}}}
    if status == 401:
        out["headers"] = _WWW_AUTHENTICATE
    if status == 503:
        out["headers"] = _RETRY_AFTER
    return out


def _authenticated(route: Any) -> bool:
    from api.deps import get_principal

    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is get_principal:
            return True
        stack.extend(dep.dependencies)
    return False


def _body_fields(op: dict[str, Any], components: dict[str, Any]) -> set[str]:
    for media in (op.get("requestBody") or {}).get("content", {}).values():
        ref = (media.get("schema") or {}).get("$ref", "")
        return set(components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
    return set()


def _statuses(method: str, path: str, op: dict[str, Any], authenticated: bool,
              body_fields: set[str] = frozenset()) -> set[int]:
    params = op.get("parameters", [])
    out: set[int] = set()
    if authenticated:
        out |= {401, 403, 503}  # the principal is read from the database: down, it is a 503 (api/errors.py)
    if (method, path) in WRITES_FILES:
        out.add(507)
    if any(p["in"] == "path" for p in params) or "requestBody" in op:
        out.add(404)  # a body names rows by id too (person_id, cartella_id, team_id...)
    if method in CHANGING_METHODS and path not in READ_ONLY_POSTS:
        out.add(409)
    if "requestBody" in op or params:
        out.add(422)
    if "requestBody" in op:
        out.add(413)
    if any(p["in"] == "query" and p["name"] == "cursor" for p in params) or "cursor" in body_fields:
        out.add(400)
    return out


def _document_errors(method: str, path: str, op: dict[str, Any], authenticated: bool,
                     components: dict[str, Any]) -> None:
    responses = op.setdefault("responses", {})
    for status in sorted(_statuses(method, path, op, authenticated, _body_fields(op, components))):
        declared = responses.get(str(status)) or {}
        responses[str(status)] = {**_problem_response(status, declared.get("description")),
                                  **{k: v for k, v in declared.items() if k not in ("description", "content")}}
    for code, response in responses.items():  # any error a route declared by itself gets the schema too
        if code[:1] in ("4", "5") and PROBLEM_MEDIA in (response.get("content") or {}):
            response["content"][PROBLEM_MEDIA].setdefault("schema", PROBLEM_REF)


def _describe_parameters(path: str, op: dict[str, Any]) -> None:
    for p in op.get("parameters", []):
        key = (p["in"], p["name"])
        title, description = PARAMETERS.get(key, (None, None))
        for (prefix, where, name), text in PARAMETER_OVERRIDES.items():
            if (where, name) == key and path.startswith(prefix):
                description = text
                break
        if title:
            p.setdefault("schema", {})["title"] = title
        if not p.get("description") and description:
            p["description"] = description


def _body_examples(op: dict[str, Any], components: dict[str, Any]) -> None:
    for media in (op.get("requestBody") or {}).get("content", {}).values():
        schema = media.get("schema") or {}
        refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
        for ref in filter(None, refs):
            examples = components.get(ref.rsplit("/", 1)[-1], {}).get("examples")
            if examples and "examples" not in media:
                media["examples"] = {f"esempio_{i}": {"summary": f"Esempio {i}", "value": value}
                                     for i, value in enumerate(examples, start=1)}


def _strip_default_titles(components: dict[str, Any]) -> None:
    """pydantic titles every property with its English-looking name ("Person Id"): the name says it already."""
    for schema in components.values():
        for name, prop in (schema.get("properties") or {}).items():
            if prop.get("title") == name.replace("_", " ").title():
                del prop["title"]


def customise(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components["securitySchemes"] = {SECURITY_SCHEME: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Token JWT (RS256/ES256) del fornitore di identità, con `iss`, `aud`, `exp` e `nbf`. In "
                       "sviluppo: `python -m api token --user as.offanengo`."}}

    routes = {(m.lower(), r.path_format): r for r in iter_route_contexts(app.routes)
              if getattr(r, "dependant", None) is not None for m in r.methods or ()}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            route = routes.get((method, path))
            authenticated = route is not None and _authenticated(route)
            if authenticated:
                op["security"] = [{SECURITY_SCHEME: []}]
            _describe_parameters(path, op)
            _body_examples(op, schemas)
            responses = op.get("responses", {})
            for code, response in responses.items():  # FastAPI's English default
                if response.get("description") == "Successful Response":
                    response["description"] = SUCCESS.get(code, SUCCESS["200"])
            if "422" in responses and "HTTPValidationError" in json.dumps(responses["422"]):
                del responses["422"]
            if path.startswith("/api/"):
                _document_errors(method, path, op, authenticated, schemas)
    for name in ("HTTPValidationError", "ValidationError"):  # in this order: the first refers to the second
        rest = {**schema, "components": {**components, "schemas": {k: v for k, v in schemas.items() if k != name}}}
        if f'"#/components/schemas/{name}"' not in json.dumps(rest):
            schemas.pop(name, None)
    _strip_default_titles(schemas)
    return schema


# ---------------------------------------------------------------------------------------------------- pages
SWAGGER_PARAMETERS = {"dom_id": "#swagger-ui", "layout": "BaseLayout", "deepLinking": True,
                      "persistAuthorization": True, "docExpansion": "none", "filter": True,
                      "displayRequestDuration": True, "showExtensions": True, "showCommonExtensions": True,
                      "validatorUrl": None}  # no badge from validator.swagger.io: the page reaches no other site

_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="it">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{root}{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}{assets}/favicon.png">
<title>{title} - documentazione delle API</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}/docs/swagger-init.js"></script>
</body>
</html>
"""


def _replace_docs(app: FastAPI) -> None:
    docs, redoc, openapi_url = app.docs_url or "/docs", app.redoc_url or "/redoc", app.openapi_url
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in (docs, redoc)]
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")

    @app.get(docs, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(_SWAGGER_PAGE.format(root=root, assets=ASSETS_URL, title=app.title))

    @app.get("/docs/swagger-init.js", include_in_schema=False)
    async def swagger_init(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        config = {"url": f"{root}{openapi_url}", **SWAGGER_PARAMETERS}
        script = (f"window.ui = SwaggerUIBundle(Object.assign({json.dumps(config)}, {{presets: "
                  "[SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}));\n")
        return Response(script, media_type="text/javascript")

    @app.get(redoc, include_in_schema=False)
    async def redoc_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False)


def install(app: FastAPI) -> None:
    """Tags, security scheme, error responses, parameter and body documentation, offline documentation pages."""
    app.openapi_tags = TAGS
    _replace_docs(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = customise(generate(), app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
