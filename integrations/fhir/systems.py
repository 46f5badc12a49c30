"""The URIs the façade writes and reads: identifier systems, code systems and extensions.

Italian identifiers follow HL7 Italia: the codice fiscale system of the base profile (Patient-it-base), STP and ENI
as the OIDs of the HL7 Italia value set of personal identifiers (oid-ehicPersonalId), with the identifier type of
the HL7 Italia terminology (it-identifier-type). What has no national system (passport, our provisional codes,
our own record ids) lives under the service's own base, one system per kind.
"""
from __future__ import annotations

CODICE_FISCALE = "http://hl7.it/sid/codiceFiscale"
STP = "urn:oid:2.16.840.1.113883.2.9.4.3.17"
ENI = "urn:oid:2.16.840.1.113883.2.9.4.3.18"
IT_IDENTIFIER_TYPE = "https://www.hl7.it/fhir/terminology/CodeSystem/it-identifier-type"
V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"

BASE = "https://pua.ambito-crema.example/fhir"
PASSPORT = f"{BASE}/sid/passaporto"
PROVISIONAL = f"{BASE}/sid/provvisorio"
ORGANISATION_CODE = f"{BASE}/sid/organizzazione"  # our organisation codes (comune-crema, asst-crema...)
CARTELLA_AREA = f"{BASE}/CodeSystem/area-cartella"
RELATION_KIND = f"{BASE}/CodeSystem/tipo-relazione"
ORGANISATION_KIND = f"{BASE}/CodeSystem/tipo-organizzazione"

# Extensions: the FHIR core ones where they exist, ours otherwise.
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
CITIZENSHIP = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"
BELFIORE = f"{BASE}/StructureDefinition/codice-catastale"  # on the birthplace Address: the comune or foreign state
COMUNE = f"{BASE}/StructureDefinition/comune"  # on an Address: the comune of the Ambito (an Organization)
LIVES_ALONE = f"{BASE}/StructureDefinition/vive-solo"
HOMELESS = f"{BASE}/StructureDefinition/senza-dimora"
FICTITIOUS_RESIDENCE = f"{BASE}/StructureDefinition/residenza-fittizia"
CONTACT_NOTES = f"{BASE}/StructureDefinition/note-recapiti"
PEC = f"{BASE}/StructureDefinition/pec"  # on a ContactPoint: certified e-mail

# identifier type code (HL7 Italia) and system for each alternative identifier of the registry
OTHER_IDENTIFIERS = {
    "stp": (STP, IT_IDENTIFIER_TYPE, "STP"),
    "eni": (ENI, IT_IDENTIFIER_TYPE, "ENI"),
    "passport": (PASSPORT, V2_IDENTIFIER_TYPE, "PPN"),
    "provisional": (PROVISIONAL, None, None),
}

# RelatedPerson: the registered person the relation names, whether they live together, sole caregiver, the decree.
REGISTERED_PERSON = f"{BASE}/StructureDefinition/persona-registrata"
COHABITING = f"{BASE}/StructureDefinition/convivente"
SOLE_CAREGIVER = f"{BASE}/StructureDefinition/caregiver-unico"
DECREE = f"{BASE}/StructureDefinition/decreto-nomina"  # sub-extensions riferimento, tribunale, ambito
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CARTELLA_ID = f"{BASE}/sid/cartella"
LEGACY_CARTELLA = f"{BASE}/sid/cartella-piattaforma-precedente"
USER = f"{BASE}/sid/utente"  # our user accounts: referenced by identifier (no Practitioner endpoint)
ISTAT_CODE = f"{BASE}/sid/codice-istat"  # the ISTAT code of a comune
BELFIORE_CODE = f"{BASE}/sid/codice-catastale"  # the Belfiore code of a comune
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
DISCHARGE_CRITERION = f"{BASE}/CodeSystem/criterio-dimissione-protetta"  # schemas/reference/discharge/eligibility.yaml
SOCIAL_RISK = f"{BASE}/StructureDefinition/rischio-sociale"  # on the ServiceRequest: social risk at discharge
CONSENT_PURPOSE = f"{BASE}/CodeSystem/finalita-consenso"
GRANTOR_KIND = f"{BASE}/StructureDefinition/chi-presta-consenso"  # valueCode: self, parent_responsibility, tutore, ads
REVOCATION = f"{BASE}/StructureDefinition/revoca-consenso"  # sub-extensions quando (dateTime), motivo (string)
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
AUDIT_ACTION = f"{BASE}/CodeSystem/azione-registro-accessi"
AUDIT_OBJECT = f"{BASE}/CodeSystem/oggetto-registro-accessi"
ROLE = f"{BASE}/CodeSystem/ruolo"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
PLAN_KIND = f"{BASE}/CodeSystem/tipo-progetto"
PLAN_STATE = f"{BASE}/StructureDefinition/stato-progetto"  # valueCode: our state (the FHIR status is coarser)
GOAL_STATUS = f"{BASE}/CodeSystem/esito-obiettivo"
GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"
SERVICE_TYPE = f"{BASE}/CodeSystem/catalogo-servizi"
FUNDING_SOURCE = f"{BASE}/StructureDefinition/fonte-finanziamento"
INTENSITY = f"{BASE}/StructureDefinition/intensita"  # valueQuantity: value and unit (ore/settimana...)
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"  # the points of an answer option
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
INSTRUMENT_OPTION = f"{BASE}/CodeSystem/strumento"  # + "/<code>/<item>": the options of one item
INSTRUMENT_SCORE = f"{BASE}/StructureDefinition/punteggio"  # on a QuestionnaireResponse: code, valore, fascia
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
# Waiting lists (RSA and the other UDO): the application is a ServiceRequest, its listing a Task.
REQUEST_CATEGORY = f"{BASE}/CodeSystem/categoria-richiesta"  # accesso-udo: an application to a UDO's waiting list
UDO_TYPE = f"{BASE}/CodeSystem/tipologia-udo"  # rsa, cdi, rsd... (schemas/reference: the waiting-list UDO types)
SERVICE_UNIT = f"{BASE}/sid/unita-offerta"  # our service units (UDO), referenced by identifier
WAITING_LIST_STATE = f"{BASE}/CodeSystem/stato-domanda-lista-attesa"
WAITING_LIST_OUTPUT = f"{BASE}/CodeSystem/esito-lista-attesa"  # posizione, punteggio
SERVICE_UNIT_EXTENSION = f"{BASE}/StructureDefinition/unita-offerta"  # on a Task output: the list it is about
TEAM = f"{BASE}/sid/equipe"  # our teams (the VMD equipe), referenced by identifier as a CareTeam
VMD = f"{BASE}/sid/vmd"  # our VMDs (valutazioni multidimensionali), referenced by identifier
