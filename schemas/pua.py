"""Public contracts of the PUA (Punto Unico di Accesso): access requests, first-level triage, orientation, referral."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.pua.models import ACCESS_STATE_LABELS, CHANNEL_LABELS, AccessState, Channel, RequesterKind
from domain.registry.models import Area
from schemas.persons import PersonCreate

REQUESTER_KIND_LABELS = {
    "self": "La persona stessa", "family": "Familiare", "caregiver": "Caregiver",
    "legal_representative": "Rappresentante legale (tutore, AdS)", "mmg": "MMG/PLS", "hospital": "Ospedale",
    "social_worker": "Assistente sociale", "ets": "Ente del Terzo Settore", "other": "Altro",
}
COMPLEXITY_LABELS = {"simple": "Bisogno semplice", "complex": "Bisogno complesso"}
PATH_LABELS = {"orientation": "Risposta diretta o orientamento", "vmd": "Valutazione multidimensionale (VMD)",
               "cot": "Centrale Operativa Territoriale (COT)"}
VIEW_LABELS = {"full": "Completa", "registration": "Dati di registrazione",
               "summary": "Sintesi dell'esito (MMG inviante)"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Versioned(_In):
    version: int | None = Field(default=None, ge=1, description=(
        "Versione attesa della richiesta (controllo di concorrenza): se è cambiata, 409."))


class AccessRequestCreate(_In):
    """Registrazione di una richiesta di accesso al PUA (accoglienza)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"person": {"codice_fiscale": "BNCNNA42C55D142T", "surname": "Bianchi", "given_name": "Anna", "sex": "F",
                    "birth_date": "1942-03-15", "birth_place_code": "D142", "lives_alone": True}, "channel": "desk",
         "requester_kind": "family", "requester_name": "Laura Bianchi (figlia)", "requester_contact": "+39 333 7654321",
         "reported_need": "Dopo una caduta la madre non riesce più a lavarsi e a fare la spesa da sola.",
         "need_domains": ["personal_care", "social_relational"]},
        {"person_id": "5b0c7a52-2f0e-4d4b-9a8e-6f1f3c2d9e01", "channel": "phone", "requester_kind": "self",
         "reported_need": "Chiede informazioni sul servizio di assistenza domiciliare (SAD)."}]})

    person_id: uuid.UUID | None = Field(default=None, description=(
        "Persona già registrata. In alternativa `person` per registrarne una nuova (con controllo dei duplicati)."))
    person: PersonCreate | None = Field(default=None, description="Nuova persona da registrare.")
    channel: Channel = Field(description=(
        "Canale: sportello, telefono, online, invio del MMG, segnalazione ospedaliera, invio dell'assistente "
        "sociale, invio di un ETS."))
    requester_kind: RequesterKind | None = Field(default=None, description=(
        "Chi presenta la richiesta. Per gli invii è dedotto dal canale se omesso."))
    requester_name: str | None = Field(default=None, max_length=200, description="Nome del richiedente")
    requester_contact: str | None = Field(default=None, max_length=200, description="Recapito del richiedente")
    referring_user_id: uuid.UUID | None = Field(default=None, description=(
        "Utente inviante (MMG per `referral_mmg`; operatore di reparto o assistente sociale per gli altri invii)."))
    referring_org_id: uuid.UUID | None = Field(default=None, description=(
        "Organizzazione inviante: studio MMG, reparto/presidio ospedaliero ASST, comune o servizio sociale, ETS."))
    reported_need: str = Field(min_length=1, max_length=4000, description="Bisogno riferito, in parole libere")
    need_domains: list[str] = Field(default_factory=list, max_length=10, description=(
        "Ambiti di bisogno: codici della voce `need_areas` del triage attivo (health, personal_care, "
        "social_relational, economic, housing, legal_protection)."))
    location_org_id: uuid.UUID | None = Field(default=None, description=(
        "Sede PUA (unità PUA o Casa di Comunità dell'Ambito). Predefinita: la sede dell'operatore."))


class ReceptionIn(_Versioned):
    """Presa in accoglienza. Il corpo si può omettere."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"version": 1}]})


class TriageIn(_Versioned):
    """Valutazione di primo livello: risposte allo strumento `pua_triage` attivo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"answers": {"request_source": "family", "request_type": "care_need",
                     "need_areas": ["personal_care", "social_relational"], "age": 84, "lives_alone": True,
                     "caregiver": "overloaded", "autonomy_loss": "partial", "cognitive_decline": False,
                     "multimorbidity": True, "recent_discharge": False, "caregiver_loss": False,
                     "abuse_suspicion": False, "housing_emergency": False}, "version": 2}]})

    answers: dict[str, Any] = Field(description=(
        "Risposte {voce: valore} allo strumento `pua_triage`. Quanto l'anagrafe sa si può omettere: `age` si "
        "ricava sempre dalla data di nascita (un'età inviata è sostituita); `lives_alone`, se omessa, è quella "
        "della scheda anagrafica, mentre una risposta data prevale. `triage.from_registry` nella risposta elenca le "
        "voci compilate dall'anagrafe."))
    instrument_version: int | None = Field(default=None, ge=1, description=(
        "Versione dello strumento (predefinita: l'ultima attiva). Una versione ritirata non accetta risposte."))


class _Decision(_Versioned):
    override_reason: str | None = Field(default=None, max_length=500, description=(
        "Motivo, obbligatorio quando la decisione differisce dal percorso suggerito dal triage."))
    notes: str | None = Field(default=None, max_length=4000, description="Note")


class OrientIn(_Decision):
    """Bisogno semplice: informazioni date e/o servizio o ente suggerito (almeno uno)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"information_given": "Spiegati requisiti e modalità di domanda del SAD comunale.", "service_type_code": "sad",
         "version": 3}]})

    information_given: str | None = Field(default=None, max_length=4000, description="Informazioni fornite")
    service_type_code: str | None = Field(default=None, max_length=40, description=(
        "Servizio suggerito (codice del catalogo dei servizi)"))
    organisation_id: uuid.UUID | None = Field(default=None, description="Ente o servizio dell'Ambito suggerito")
    external_service: str | None = Field(default=None, max_length=300, description=(
        "Servizio esterno suggerito (testo libero)"))


class _Referral(_Decision):
    area: Area | None = Field(default=None, description=(
        "Area della cartella da aprire o riusare. Predefinita: anziani da 65 anni, minori_famiglia sotto i 18, "
        "altrimenti disabili."))
    owning_comune_id: uuid.UUID | None = Field(default=None, description=(
        "Comune titolare della cartella, solo se la persona non ha residenza né domicilio nell'Ambito."))


class ReferVmdIn(_Referral):
    """Bisogno complesso: richiesta di valutazione multidimensionale (VMD). Il corpo si può omettere (équipe,
    area e servizio predefiniti)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"area": "anziani", "requested_service_type": "sad", "notes": "Caregiver in difficoltà.", "version": 3}]})

    team_id: uuid.UUID | None = Field(default=None, description=(
        "Équipe VMD. Predefinita: l'équipe VMD dell'Ambito."))
    requested_service_type: str | None = Field(default=None, max_length=40, description=(
        "Servizio o misura richiesti (codice del catalogo)"))


class ReferCotIn(_Referral):
    """Bisogno complesso con continuità ospedale-territorio: attivazione della COT. Il corpo si può omettere (COT
    del domicilio)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"notes": "Dimissione prevista tra tre giorni dal reparto di Medicina.", "version": 3},
        {"with_vmd": True, "requested_service_type": "adi", "notes": "Dimissione venerdì; serve anche la VMD."}]})

    cot_org_id: uuid.UUID | None = Field(default=None, description=(
        "COT destinataria. Predefinita: la COT del domicilio (con una sola COT nell'Ambito, quella)."))
    with_vmd: bool = Field(default=False, description=(
        "Attiva insieme la COT e la VMD (esito 'COT e VMD' del triage): la richiesta passa a 'inviata alla COT e a "
        "VMD' e l'invio a VMD conta per l'indicatore P3."))
    team_id: uuid.UUID | None = Field(default=None, description=(
        "Solo con `with_vmd`: équipe VMD. Predefinita: l'équipe VMD dell'Ambito."))
    requested_service_type: str | None = Field(default=None, max_length=40, description=(
        "Solo con `with_vmd`: servizio o misura richiesti alla VMD (codice del catalogo)."))


class CloseIn(_Versioned):
    """Ritiro o annullamento della richiesta."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "La persona ha trovato un'assistente familiare privata.", "version": 2}]})

    reason: str = Field(min_length=1, max_length=500, description="Motivo")


class TriagePublic(BaseModel):
    response_id: uuid.UUID
    instrument_code: str
    instrument_version: int
    answers: dict[str, Any]
    scores: dict[str, Any] = Field(description="Punteggi, fasce ed esiti calcolati dal server (con le regole "
                                               "soddisfatte).")
    outcome: str | None
    author_id: uuid.UUID
    author_org_id: uuid.UUID
    recorded_at: datetime
    from_registry: list[str] = Field(default_factory=list, description=(
        "Voci compilate dall'anagrafe e non dall'operatore: `age` (sempre, dalla data di nascita) e `lives_alone` "
        "quando la richiesta non la indicava."))


class AccessRequestPublic(BaseModel):
    """Una richiesta di accesso. I campi che la vista non mostra sono `null` (vedi `view`)."""

    view: Literal["full", "registration", "summary"] = Field(description=(
        "full: tutto; registration: quanto registrato e lo stato (chi ha registrato); summary: stato, date e "
        "complessità (MMG inviante)."))
    view_label: str
    id: uuid.UUID
    person_id: uuid.UUID
    channel: Channel
    channel_label: str
    state: AccessState
    state_label: str
    registered_at: datetime
    reception_at: datetime | None = None
    first_level_at: datetime | None = None
    closed_at: datetime | None = None
    complexity: str | None = None
    complexity_label: str | None = None
    requester_kind: RequesterKind | None = None
    requester_kind_label: str | None = None
    requester_name: str | None = None
    requester_contact: str | None = None
    referring_user_id: uuid.UUID | None = None
    referring_org_id: uuid.UUID | None = None
    reported_need: str | None = None
    need_domains: list[str] | None = None
    location_org_id: uuid.UUID | None = None
    operator_id: uuid.UUID | None = None
    cartella_id: uuid.UUID | None = None
    triage_response_id: uuid.UUID | None = None
    suggested_path: str | None = None
    suggested_path_label: str | None = None
    orientation: dict[str, Any] | None = None
    vmd_id: uuid.UUID | None = None
    close_reason: str | None = None
    version: int | None = None
    triage: TriagePublic | None = Field(default=None, description="Valutazione di primo livello (vista completa, "
                                                                  "solo nel dettaglio).")

    @classmethod
    def of(cls, ar: Any, view: str, *, triage: Any = None) -> AccessRequestPublic:
        """`triage`: the request's triage (`domain.pua.queries.Triage`: the stored response and the items answered
        from the registry), shown in the full view only."""
        from domain.pua.policy import fields_of

        shown = fields_of(view)  # type: ignore[arg-type]

        def pick(name: str, value: Any) -> Any:
            return value if shown is None or name in shown else None

        state, channel = str(ar.state), str(ar.channel)
        rk = pick("requester_kind", ar.requester_kind)
        complexity = pick("complexity", ar.complexity)
        path = pick("suggested_path", ar.suggested_path)
        r = triage.response if triage is not None and shown is None else None  # the full view only
        return cls(
            view=view, view_label=VIEW_LABELS[view], id=ar.id, person_id=ar.person_id, channel=channel,
            channel_label=CHANNEL_LABELS[channel], state=state, state_label=ACCESS_STATE_LABELS[state],
            registered_at=ar.registered_at, reception_at=ar.reception_at, first_level_at=ar.first_level_at,
            closed_at=ar.closed_at, complexity=complexity,
            complexity_label=COMPLEXITY_LABELS.get(complexity) if complexity else None,
            requester_kind=rk, requester_kind_label=REQUESTER_KIND_LABELS[str(rk)] if rk else None,
            requester_name=pick("requester_name", ar.requester_name),
            requester_contact=pick("requester_contact", ar.requester_contact),
            referring_user_id=pick("referring_user_id", ar.referring_user_id),
            referring_org_id=pick("referring_org_id", ar.referring_org_id),
            reported_need=pick("reported_need", ar.reported_need),
            need_domains=pick("need_domains", list(ar.need_domains or [])),
            location_org_id=pick("location_org_id", ar.location_org_id),
            operator_id=pick("operator_id", ar.operator_id),
            cartella_id=pick("cartella_id", ar.cartella_id),
            triage_response_id=pick("triage_response_id", ar.triage_response_id),
            suggested_path=path, suggested_path_label=PATH_LABELS.get(path) if path else None,
            orientation=pick("orientation", dict(ar.orientation or {})),
            vmd_id=pick("vmd_id", ar.vmd_id), close_reason=pick("close_reason", ar.close_reason),
            version=pick("version", ar.version),
            triage=(TriagePublic(response_id=r.id, instrument_code=r.instrument_code,
                                 instrument_version=r.instrument_version, answers=r.answers, scores=r.scores,
                                 outcome=r.outcome, author_id=r.author_id, author_org_id=r.author_org_id,
                                 recorded_at=r.recorded_at, from_registry=triage.from_registry)
                    if r is not None else None),
        )


class AccessRequestCreated(AccessRequestPublic):
    person_created: bool = Field(description="La persona è stata registrata con questa richiesta.")
    possible_duplicates: list[uuid.UUID] = Field(default_factory=list, description=(
        "Persone già registrate che somigliano a quella nuova (segnalate ai data steward)."))
    triage_work_item_id: uuid.UUID | None = Field(default=None, description="Attività 'richiesta da valutare'.")


class AccessRequestPage(BaseModel):
    items: list[AccessRequestPublic]
    next_cursor: str | None = Field(default=None, description="Da passare come `cursor` per la pagina successiva.")
    total: int | None = Field(default=None, description="Totale (solo con `total=true`).")
