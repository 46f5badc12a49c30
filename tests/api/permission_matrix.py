"""The EXPECTED permission matrix: every /api route × every role × four situations.

Written from the product rules (domain brief §2 actors and §6.4 role-based access, the issue texts), NOT from the
application's own tables (schemas/security/permissions.yaml and access.yaml): the test compares the two, so a wrong
line in the application's tables shows up as a failing cell instead of being copied here.

Situations (what the subject of the request — a person, a cartella or something hanging off it — is to the caller):
  own           the subject's cartella is owned by the caller's comune (or a comune of the caller's sub-ambito),
                or the caller is assigned to it (personally, through a team or through the organisation it works for),
                or the subject is the caller's own row (their diary entry, their break-glass grant, their work item,
                the PUA request they registered or referred);
  other         same Ambito, not owned, not assigned, not the caller's own row;
  other_ambito  the subject belongs to the second test Ambito (`ambito-cremona-test`);
  revoked       consent revoked, no legal basis: a case of the caller's Ambito built like the `own` one, but every
                cartella assignment that reaches it has NO legal basis, and the person's consents for the purposes of
                the cross-organisation roles (care, share_asst, share_rsa, share_ets) were given and then revoked.
                The roles that need consent to reach a case of the social side (CONSENT_ROLES: the ASST side, the
                MMG, the ETS and RSA providers — brief §6.4 "cross-organisation access requires a Consent or a
                documented legal basis") get 403 (consent_required) wherever `own` reaches the case (a CASE cell);
                every other cell is as in `own`. The comune, the sub-ambito coordinator, the AS d'Ambito and the
                CSC hold the social function and need no consent. Rows that are the caller's own rather than case
                data (work items, break-glass grants, the PUA requests one registered or referred) are not gated
                by consent (`NOT_CONSENT_GATED`).
Routes without a subject (lists, catalogue, /me, most creates) have the same value in every situation. The tables
below give (own, other, other_ambito); `revoked` is derived from `own` by the rule above (`expected()`).

Values:
  ALLOW      the request succeeds: 2xx. The scenario builds, per route, a request valid for the caller and a
             subject in the state the action needs; the few cells where that cannot be done are listed, with the
             reason, in ALLOWED_NOT_2XX (tests/api/test_permission_matrix.py), where they may answer 409/422;
  FORBIDDEN  403: the role lacks the coarse permission (or a finer rule of the same kind: author-only, equipe-only,
             full view only) — the caller may know the row exists but may not do this;
  HIDDEN     404: the row is outside the caller's scope, so its existence is not revealed.

Policy (docs/decisions/permission-matrix.md): 403 when the role lacks the permission or consent is required,
404 when the row is outside the principal's scope, 401 without a valid token (tested in tests/api/test_auth.py).
"""
from __future__ import annotations

from domain.security.models import Role as R  # noqa: N817  (R.x reads as a role name in the table below)

ALLOW, FORBIDDEN, HIDDEN = "ALLOW", "FORBIDDEN", "HIDDEN"
SITUATIONS = ("own", "other", "other_ambito", "revoked")
ROLES: tuple[str, ...] = tuple(r.value for r in R)

Cells = tuple[str, str, str]  # (own, other, other_ambito); `revoked` is derived (see expected())

# ------------------------------------------------------------------------------------------------ cell shapes
ANY: Cells = (ALLOW, ALLOW, ALLOW)            # no subject, or a subject every holder reaches (global catalogue)
AMBITO: Cells = (ALLOW, ALLOW, HIDDEN)        # every row of the caller's Ambito, nothing of another Ambito
CASE: Cells = (ALLOW, HIDDEN, HIDDEN)         # only the caller's own cases / own rows
DENY: Cells = (FORBIDDEN, FORBIDDEN, FORBIDDEN)  # no coarse permission: 403 whatever the row
NO_SCOPE: Cells = (HIDDEN, HIDDEN, HIDDEN)    # holds the permission but reaches no case at all
FULL_ONLY: Cells = (FORBIDDEN, HIDDEN, HIDDEN)  # reaches its case with a minimal view, this needs the full one

# ------------------------------------------------------------------------------------------------ role groups
# Who does what, in the words of the brief (§2, §6.4):
COMUNE = {R.comune_social_worker}              # case owner for municipal cases (RW own comune; joint cases R/W)
COORD = {R.sub_ambito_coordinator}             # supervisor view over the comuni of the sub-ambito, read only
AS_AMBITO = {R.ambito_pua_social_worker}       # PUA intake + VMD assessor across the Ambito; joint cases only
ASST_PUA = {R.asst_pua_operator}               # PUA intake, triage, referral; VMD (clinical domain)
PUA_STAFF = AS_AMBITO | ASST_PUA               # the PUA equipe: every access request of the Ambito
FRONT_DESK = {R.asst_front_desk}               # registers requests (and new persons), nothing else
CDC = {R.cdc_assessor}                         # CdC assessment team / district nurse: assigned VMDs and PI, RW
COT = {R.cot_operator}                         # discharge data, R cases they are assigned to
WARD = {R.ward_staff}                          # create signals (persons); the discharge context comes later
MMG = {R.mmg}                                  # referrer: refers, sees the outcome summary of their patients
CSC = {R.csc_operator}                         # CSC-run services (tutela, SIL, PIS): RW where assigned
ANALYST = {R.analyst}                          # aggregates only: no nominative data
PROVIDERS = {R.ets_operator, R.rsa_operator}   # purpose-bound, minimal dataset of assigned cases
ADMIN = {R.system_admin}                       # users, teams, reference data; no case data
DPO = {R.dpo}                                  # audit and access logs only
STEWARD = {R.data_steward}                     # imports and duplicates (identity data only)
INTEGRATION = {R.integration_operator}         # the messages sent to ASST: dead letters, their payload, retries
REGIONAL = {R.regional_operator}               # the Region's helpdesk: in which Ambito a person is known, no more
EVERYONE = set(R)
AMBITO_ROLES = EVERYONE - REGIONAL             # held in an Ambito: its reference data (the Region holds none)

CASE_WRITERS = COMUNE | PUA_STAFF | CSC                 # write the social record of their cases
CARTELLA_WRITERS = COMUNE | AS_AMBITO | CSC             # open / manage the cartella sociale (not the ASST side)
CASE_READERS = CASE_WRITERS | COORD | CDC | COT         # read full case data of their cases
MINIMAL = MMG | PROVIDERS                               # reach assigned cases with the minimal projection
IDENTITY = CASE_READERS | STEWARD                       # see identity data of every person of the Ambito (dedup)
SEARCHERS = IDENTITY | FRONT_DESK | WARD                # search persons / check duplicates before registering
REGISTRARS = CASE_WRITERS | FRONT_DESK | WARD           # register new persons
PUA_REGISTRARS = PUA_STAFF | FRONT_DESK | MMG           # register access requests (MMG: online referral)
PUA_READERS = PUA_REGISTRARS | COMUNE | COORD | COT     # read access requests (each its own rows)
VMD_ASSESSORS = CASE_WRITERS | CDC                      # fill instruments, sign (when assessor of the VMD)
VMD_MANAGERS = PUA_STAFF | CDC                          # schedule, assessors, meeting, conclude (equipe members)
VMD_REQUESTERS = COMUNE | PUA_STAFF | MMG               # ask for a VMD (MMG: for their patients)
VMD_READERS = CASE_READERS | MMG | {R.rsa_operator}     # read VMDs (MMG, RSA: summary)
PLAN_WRITERS = CASE_WRITERS | CDC                       # write the progetto individualizzato
PLAN_READERS = CASE_READERS | MINIMAL                   # read it (providers/MMG: minimal view)
DIARY_WRITERS = CASE_WRITERS | CDC                      # write diary entries on their cases
ATTACHMENT_WRITERS = CASE_WRITERS                       # upload documents to their cases
BREAK_GLASS = COMUNE | PUA_STAFF | COT                  # emergency access outside scope
WORKERS = AMBITO_ROLES - ANALYST - ADMIN - DPO - INTEGRATION  # roles that receive work items
INSTRUMENT_READERS = CASE_READERS                       # assessment instruments (forms, scoring)


def cells(default: Cells = DENY, **groups: tuple[set, Cells]) -> dict[str, Cells]:
    """Every role gets `default`; each keyword names a (roles, cells) pair applied in order (later wins)."""
    out = {r: default for r in ROLES}
    for roles, value in groups.values():
        for role in roles:
            out[R(role).value] = value
    return out


def grant(roles: set, value: Cells, **more: tuple[set, Cells]) -> dict[str, Cells]:
    """`roles` get `value`, the roles in `more` their own cells, everyone else 403."""
    return cells(DENY, main=(roles, value), **more)


EXPECTED: dict[tuple[str, str], dict[str, Cells]] = {}


def route(method: str, path: str, table: dict[str, Cells]) -> None:
    key = (method.upper(), "/api" + path)
    assert key not in EXPECTED, f"duplicate route in the expected matrix: {key}"
    EXPECTED[key] = table


# ================================================================================================= me, work items
# Everyone sees their own profile.
route("GET", "/me", grant(EVERYONE, ANY))
# Work queues belong to people who do case work; analysts, admins and the DPO receive no case tasks.
# Completing an item: only your own item (assigned to you, your team or your organisation); somebody else's item is
# outside your scope, so 404 — the same answer as an item of another Ambito.
route("GET", "/work-items/mine", grant(WORKERS, ANY))
route("POST", "/work-items/{item_id}/complete", grant(WORKERS, CASE))

# ================================================================================================= regional search
# The Region's helpdesk finds in which Ambito a person is known, whatever the Ambito (issue 18): no subject, the
# same answer in every situation; every other role is refused, the Ambito's administrators and stewards included.
route("GET", "/regional/persons", grant(REGIONAL, ANY))
route("POST", "/regional/persons/search", grant(REGIONAL, ANY))  # the same search, criteria in the body
# Who watches the helpdesk: its searches (who, when, why, how many), for the DPO — the Region's sees every one, an
# Ambito's those that found its persons (none in the scenario: still a 200 page).
route("GET", "/regional/searches", grant(DPO, ANY))

# ================================================================================================= territory
# Reference data (Ambito, comuni, organisations, units, catalogue) is readable by every role of the Ambito; another
# Ambito's rows are not found. Changing it is the system administrator's job. The service catalogue is shared by
# all Ambiti (no Ambito of its own), so its rows exist for every administrator. The regional helpdesk is held on
# the Region, which has no territory: it reads none of it.
for p in ("/territory/ambiti/me", "/territory/sub-ambiti", "/territory/comuni", "/organisations", "/service-units",
          "/catalogue/service-types", "/catalogue/udo-types", "/catalogue/funding-sources"):
    route("GET", p, grant(AMBITO_ROLES, ANY))
for p in ("/territory/comuni/{comune_id}", "/organisations/{org_id}", "/service-units/{unit_id}"):
    route("GET", p, grant(AMBITO_ROLES, AMBITO))
route("PATCH", "/territory/comuni/{comune_id}", grant(ADMIN, AMBITO))
route("POST", "/organisations", grant(ADMIN, ANY))
route("PATCH", "/organisations/{org_id}", grant(ADMIN, AMBITO))
route("PATCH", "/service-units/{unit_id}", grant(ADMIN, AMBITO))
route("POST", "/catalogue/service-types", grant(ADMIN, ANY))
route("PATCH", "/catalogue/service-types/{code}", grant(ADMIN, ANY))
route("POST", "/catalogue/funding-sources", grant(ADMIN, ANY))
route("PATCH", "/catalogue/funding-sources/{code}", grant(ADMIN, ANY))

# ================================================================================================= administration
# Users, role assignments, teams: the system administrator of the Ambito only; another Ambito's users and teams are
# not found. The permission table is readable by the administrator and the DPO (who audits it).
route("POST", "/admin/users", grant(ADMIN, ANY))
route("GET", "/admin/users", grant(ADMIN, ANY))
route("GET", "/admin/users/{user_id}", grant(ADMIN, AMBITO))
route("PATCH", "/admin/users/{user_id}", grant(ADMIN, AMBITO))
route("POST", "/admin/users/{user_id}/roles", grant(ADMIN, AMBITO))
route("POST", "/admin/role-assignments/{assignment_id}/end", grant(ADMIN, AMBITO))
# Separation of duties: a role reaching personal data waits for a second administrator of the same Ambito.
route("POST", "/admin/role-assignments/{assignment_id}/approve", grant(ADMIN, AMBITO))
route("POST", "/admin/teams", grant(ADMIN, ANY))
route("GET", "/admin/teams", grant(ADMIN, ANY))
route("GET", "/admin/teams/{team_id}", grant(ADMIN, AMBITO))
route("POST", "/admin/teams/{team_id}/members", grant(ADMIN, AMBITO))
route("POST", "/admin/team-members/{member_id}/end", grant(ADMIN, AMBITO))
route("GET", "/admin/permissions", grant(ADMIN | DPO, ANY))
# The demo clock of a development service (DEV_MODE=true, as in the tests; 404 otherwise): the administrator only.
route("GET", "/dev/clock", grant(ADMIN, ANY))
route("PUT", "/dev/clock", grant(ADMIN, ANY))

# ================================================================================================= persons
# Identity data (name, CF, birth, residence) is shared inside one Ambito so that nobody registers a person twice:
# case workers of every kind and data stewards see the identity of any person of their Ambito (GET person). The
# minimal roles (MMG, ETS, RSA) see only their assigned persons. Anything beyond identity — history snapshots,
# relations, consents, cartelle — needs the case scope: outside it the sub-resource is not found.
route("POST", "/persons/duplicates-check", grant(SEARCHERS, ANY))
route("GET", "/persons", grant(SEARCHERS, ANY))
route("POST", "/persons/search", grant(SEARCHERS, ANY))  # the same search, criteria in the body (not in URLs)
route("POST", "/persons", grant(REGISTRARS, ANY))
route("GET", "/persons/{person_id}", grant(IDENTITY, AMBITO, minimal=(MINIMAL, CASE)))
# Writing a person's data is case work: the comune owning the case, the PUA working the intake, the CSC service.
# A person seen only through the identity view is outside the write scope (404, like any out-of-scope row).
route("PATCH", "/persons/{person_id}", grant(CASE_WRITERS, CASE))
route("POST", "/persons/{person_id}/death", grant(CASE_WRITERS, CASE))
# History holds full snapshots (contacts, notes): case readers of the case only; the minimal roles reach the person
# but not its full data (403); stewards have no case scope.
route("GET", "/persons/{person_id}/history",
      grant(CASE_READERS, CASE, minimal=(MINIMAL, FULL_ONLY), steward=(STEWARD, NO_SCOPE)))
# Caregivers, family, tutore / AdS: part of the social record.
route("GET", "/persons/{person_id}/relations",
      grant(CASE_READERS, CASE, minimal=(MINIMAL, FULL_ONLY), steward=(STEWARD, NO_SCOPE)))
route("POST", "/persons/{person_id}/relations", grant(CASE_WRITERS, CASE))
route("POST", "/persons/{person_id}/relations/{relation_id}/end", grant(CASE_WRITERS, CASE))
# Duplicates queue: data stewards only, every pair of their Ambito.
route("GET", "/person-matches", grant(STEWARD, ANY))
route("GET", "/person-matches/{match_id}", grant(STEWARD, AMBITO))
route("POST", "/person-matches/{match_id}/decision", grant(STEWARD, AMBITO))

# ================================================================================================= consent, break-glass
# Consents are part of the case: read by case readers, recorded and revoked by case writers, of their cases.
route("GET", "/persons/{person_id}/consents", grant(CASE_READERS, CASE))
route("POST", "/persons/{person_id}/consents", grant(CASE_WRITERS, CASE))
route("POST", "/persons/{person_id}/consents/{consent_id}/revoke", grant(CASE_WRITERS, CASE))
# Break-glass exists to reach a person OUTSIDE one's scope, so it works on any person of the Ambito (never of
# another Ambito). Only the roles that handle emergencies hold it. A grant is ended by its holder only.
route("POST", "/break-glass", grant(BREAK_GLASS, AMBITO))
route("GET", "/break-glass/mine", grant(BREAK_GLASS, ANY))
route("POST", "/break-glass/{grant_id}/end", grant(BREAK_GLASS, CASE))
# Access log of a person: the DPO for every person of the Ambito; the owning comune's social worker (titolare) for
# the persons of their cases.
route("GET", "/persons/{person_id}/access-log", grant(DPO, AMBITO, titolare=(COMUNE, CASE)))

# ================================================================================================= cartelle
# Cartelle: case readers read the cartelle of their cases. The cartella sociale is the comune's social record:
# opening one, naming the case manager and assigning who works on it is done by the comune, by the AS d'Ambito
# of the PUA (the intake opens the cartella of a referred person) and by the CSC services, on their cases. The
# ASST side (PUA operators, CdC, COT) works on its own clinical side and reads the cartella; it does not manage it.
route("GET", "/persons/{person_id}/cartelle", grant(CASE_READERS, CASE))
route("POST", "/persons/{person_id}/cartelle", grant(CARTELLA_WRITERS, CASE))
route("GET", "/cartelle/{cartella_id}", grant(CASE_READERS, CASE))
route("GET", "/cartelle/{cartella_id}/history", grant(CASE_READERS, CASE))
route("GET", "/cartelle/{cartella_id}/assignments", grant(CASE_READERS, CASE))
# Choosing the case manager, adding or ending who works on the case, closing a cartella and transferring it to
# another comune are acts of the comune that owns the social function (brief §6.4: "comuni own the social
# function"; the AS d'Ambito reads municipal records of joint cases, the CSC works on its services): the joint
# workers reach the cartella through an assignment but may not widen or change its access list, nor close or
# transfer it (403).
for owner_act in ("", "/assignments", "/assignments/{assignment_id}/end", "/close", "/transfer"):
    route("PATCH" if not owner_act else "POST", f"/cartelle/{{cartella_id}}{owner_act}",
          grant(COMUNE, CASE, joint=(AS_AMBITO | CSC, FULL_ONLY)))

# ================================================================================================= diary, attachments
# The case diary and the documents are the social record: read by case readers, written by case writers and the
# CdC assessors (they keep the record of the joint assessment). A diary entry is edited only by its author
# (`own` = the caller's own entry); an entry on somebody else's case is not found.
route("GET", "/cartelle/{cartella_id}/diary", grant(CASE_READERS, CASE))
route("POST", "/cartelle/{cartella_id}/diary", grant(DIARY_WRITERS, CASE))
route("PATCH", "/diary/{entry_id}", grant(DIARY_WRITERS, CASE))
route("GET", "/cartelle/{cartella_id}/attachments", grant(CASE_READERS, CASE))
route("POST", "/cartelle/{cartella_id}/attachments", grant(ATTACHMENT_WRITERS, CASE))
route("GET", "/attachments/{attachment_id}/content", grant(CASE_READERS, CASE))

# ================================================================================================= instruments
# The assessment instruments (forms, scoring preview) are tools of the people who assess or read assessments.
route("GET", "/instruments", grant(INSTRUMENT_READERS, ANY))
route("GET", "/instruments/{code}", grant(INSTRUMENT_READERS, ANY))
route("GET", "/instruments/{code}/versions/{version}", grant(INSTRUMENT_READERS, ANY))
route("POST", "/instruments/{code}/score", grant(INSTRUMENT_READERS, ANY))

# ================================================================================================= PUA
# Registration: the PUA desk and equipe, and the MMG (online referral), for any person of the Ambito: a referral is
# the entry point of the pathway, so the person need not be in the referrer's caseload yet; registering returns
# nothing of the person beyond what the referrer sent. Reading: the PUA equipe reads every request of the Ambito;
# the desk operator what they registered, the MMG what they referred, the comune (and its sub-ambito coordinator)
# the requests of persons whose cartella it owns, the COT the requests referred to it. Working a request
# (reception, triage, orientation, referral, withdrawal, cancellation) is PUA equipe work.
route("POST", "/pua/requests", grant(PUA_REGISTRARS, AMBITO))
route("GET", "/pua/requests", grant(PUA_READERS, ANY))
route("GET", "/pua/queue", grant(PUA_STAFF, ANY))
route("GET", "/pua/requests/{request_id}",
      grant(PUA_STAFF, AMBITO, own_rows=(FRONT_DESK | MMG | COMUNE | COORD | COT, CASE)))
for action in ("reception", "triage", "orient", "refer-vmd", "refer-cot", "withdraw", "cancel"):
    route("POST", f"/pua/requests/{{request_id}}/{action}", grant(PUA_STAFF, AMBITO))

# ================================================================================================= VMD
# Reading a VMD: case readers of the case, the referring MMG and the RSA chosen by the applicant (summary).
# Requesting one: the comune, the PUA equipe, the MMG for their patient. Managing it (schedule, assessors, meeting,
# conclusion): the equipe operators (PUA equipe, CdC assessment team — brief §2 A8 "records joint assessment,
# equipe meeting"); filling instruments and signing: the assessors of that VMD (comune/Ambito/CSC/ASST side).
# Cancelling: an equipe member or whoever requested it (`own` MMG requested the scenario's VMD).
route("GET", "/vmd/mine", grant(VMD_ASSESSORS, ANY))
route("POST", "/vmd", grant(VMD_REQUESTERS, CASE))
route("GET", "/vmd/{vmd_id}", grant(VMD_READERS, CASE))
route("GET", "/cartelle/{cartella_id}/vmd", grant(VMD_READERS, CASE))
route("GET", "/persons/{person_id}/vmd", grant(VMD_READERS, CASE))
for action in ("schedule", "assessors", "meetings", "conclude"):
    route("POST", f"/vmd/{{vmd_id}}/{action}", grant(VMD_MANAGERS, CASE))
for action in ("responses", "sign"):
    route("POST", f"/vmd/{{vmd_id}}/{action}", grant(VMD_ASSESSORS, CASE))
route("POST", "/vmd/{vmd_id}/cancel", grant(VMD_REQUESTERS, CASE))
route("POST", "/vmd/{vmd_id}/reassessment", grant(VMD_REQUESTERS, CASE))

# ================================================================================================= care plans
# Reading: case readers of the case; providers (ETS, RSA) the plans with an intervention of their organisation,
# minimal view; the MMG the summary of their patient's plan (brief §6.4 "R summary", A12 "see the outcome summary
# for their patients"). Versions and the printable plan are full data: the minimal roles are refused (403).
# Writing: case writers and the CdC assessment team (brief §6.4 "VMD & PI: RW"; A8 "PI proposal").
route("GET", "/care-plans/due-reviews", grant(PLAN_READERS, ANY))
route("GET", "/care-plans/{plan_id}", grant(PLAN_READERS, CASE))
route("GET", "/cartelle/{cartella_id}/care-plans", grant(PLAN_READERS, CASE))
for p in ("/care-plans/{plan_id}/versions", "/care-plans/{plan_id}/versions/{version}",
          "/care-plans/{plan_id}/print"):
    route("GET", p, grant(CASE_READERS, CASE, minimal=(MINIMAL, FULL_ONLY)))
route("POST", "/care-plans", grant(PLAN_WRITERS, CASE))
route("PATCH", "/care-plans/{plan_id}", grant(PLAN_WRITERS, CASE))
route("POST", "/care-plans/{plan_id}/goals", grant(PLAN_WRITERS, CASE))
route("PATCH", "/care-plans/{plan_id}/goals/{goal_id}", grant(PLAN_WRITERS, CASE))
route("POST", "/care-plans/{plan_id}/interventions", grant(PLAN_WRITERS, CASE))
route("PATCH", "/care-plans/{plan_id}/interventions/{intervention_id}", grant(PLAN_WRITERS, CASE))
for action in ("start", "end", "cancel"):
    route("POST", f"/care-plans/{{plan_id}}/interventions/{{intervention_id}}/{action}", grant(PLAN_WRITERS, CASE))
for action in ("propose", "back-to-draft", "agree", "activate", "reviews/start", "reviews", "complete", "suspend",
               "resume", "revoke"):
    route("POST", f"/care-plans/{{plan_id}}/{action}", grant(PLAN_WRITERS, CASE))


# ================================================================================================= discharges
# Dimissioni protette (issue 10): ward staff signal (their ward, any person of the Ambito: the signal is the entry
# point) and read the status of what their ward signalled (`other` ward user works on the same ward: AMBITO); the
# COT reads the cases of its COT, the comune social worker its residents' cases. The case rests on the LEPS
# protocol, not on the cartella: consent does not gate it (NOT_CONSENT_GATED).
DISCHARGE_READERS = WARD | COT | COMUNE
route("POST", "/discharges", grant(WARD, AMBITO))
# Providers (ETS, RSA) named in the discharge project read the case with the minimal view (as for plans): `own` is
# a provider of the project, `other` a provider that is not named in it.
route("GET", "/discharges", grant(DISCHARGE_READERS | PROVIDERS, ANY))
route("GET", "/discharges/{discharge_id}", grant(COT | COMUNE | PROVIDERS, CASE, ward=(WARD, AMBITO)))
# The COT's queue of evaluations awaiting it: COT operators only (the comune works cases, it has no COT queue).
route("GET", "/discharges/cot-queue", grant(COT, ANY))
# Working a case (evaluation, discharge, closure, exits): the COT of the case and the comune of residence. The VMD is
# requested and the discharge project written by the comune (the COT requests no VMD and writes no plan).
for action in ("setting", "evaluation", "discharge", "monitoring", "close", "exit"):
    route("POST", f"/discharges/{{discharge_id}}/{action}", grant(COT | COMUNE, CASE))
# A signal entered by mistake is withdrawn by its ward (any ward user of that ward, as for reading it) or the COT
# and the comune of the case.
route("POST", "/discharges/{discharge_id}/cancel", grant(COT | COMUNE, CASE, ward=(WARD, AMBITO)))
for action in ("evaluation-request", "project"):
    route("POST", f"/discharges/{{discharge_id}}/{action}", grant(COMUNE, CASE))
# ================================================================================================= waiting lists
# Liste d'attesa RSA e UDO (issue 11, brief §6.4 "RSA list" column): the comune files applications for its residents
# (the AS d'Ambito at the PUA too, on the cartelle it reaches, as for POST /vmd), raises urgency, records confirmations
# and withdrawals; the sub-ambito coordinator reads its comuni's applications and decides urgency; the Ambito's
# services (AS d'Ambito, CdC, COT, CSC) read every application of the Ambito; the CdC takes the listing decision with
# the comune (the joint assessment). RSA operators read only the applications that chose their units (minimal view),
# their units' lists, and work beds and offers. The application to the RSA under the accord is the legal basis of the
# RSA's minimal view (the VMD summary needs the person's share_rsa consent): consent does not gate these rows.
WL = "/waiting-lists"
WL_READERS = COMUNE | COORD | AS_AMBITO | CDC | COT | CSC
RSA = {R.rsa_operator}
route("POST", f"{WL}/applications", grant(COMUNE | AS_AMBITO, CASE))
route("GET", f"{WL}/applications", grant(WL_READERS | RSA, ANY))
route("GET", f"{WL}/applications/{{application_id}}", grant(COMUNE | COORD | RSA, CASE,
                                                            ambito=(AS_AMBITO | CDC | COT | CSC, AMBITO)))
# Its history (each event with its cause): the same readers, but an RSA operator's minimal view holds none.
route("GET", f"{WL}/applications/{{application_id}}/history", grant(COMUNE | COORD, CASE, rsa=(RSA, FULL_ONLY),
                                                                    ambito=(AS_AMBITO | CDC | COT | CSC, AMBITO)))
for action in ("decision", "assessment"):
    route("POST", f"{WL}/applications/{{application_id}}/{action}", grant(COMUNE, CASE, cdc=(CDC, AMBITO)))
for action in ("urgency", "confirm", "exit"):
    route("POST", f"{WL}/applications/{{application_id}}/{action}", grant(COMUNE, CASE))
route("POST", f"{WL}/applications/{{application_id}}/urgency/decision", grant(COORD, CASE))
# A unit's list: every unit of the Ambito for the Ambito's readers (the person shown on the rows they reach); an
# RSA operator its own units only (`other` is the operator of another RSA). The Ambito-wide ranking is not theirs.
route("GET", f"{WL}/units/{{unit_id}}", grant(WL_READERS, AMBITO, rsa=(RSA, CASE)))
route("GET", f"{WL}/ranking", grant(WL_READERS, ANY))
route("POST", f"{WL}/units/{{unit_id}}/beds", grant(RSA, CASE))
route("POST", f"{WL}/offers", grant(RSA, CASE))
# Replies to an offer: the operator of the offered unit, or the comune of the person (who notifies the person).
for action in ("receipt", "accept", "refuse"):
    route("POST", f"{WL}/offers/{{offer_id}}/{action}", grant(RSA | COMUNE, CASE))
# ================================================================================================= imports
# Imports from the older platform (issue 17): the data stewards of the Ambito, nobody else (not the system
# administrator). Any steward of the Ambito follows and confirms the Ambito's imports; another Ambito's are hidden.
route("GET", "/imports/template", grant(STEWARD, ANY))
route("POST", "/imports", grant(STEWARD, ANY))
route("GET", "/imports", grant(STEWARD, ANY))
route("GET", "/imports/{import_id}", grant(STEWARD, AMBITO))
route("GET", "/imports/{import_id}/report", grant(STEWARD, AMBITO))
route("POST", "/imports/{import_id}/confirm", grant(STEWARD, AMBITO))
# ================================================================================================= outbox to ASST
# The messages sent to ASST (issue 12): dead letters hold personal data (the FHIR resources), so the integration
# operator of the Ambito lists them with their payload and puts them back in the queue; the DPO sees what was sent,
# withheld or buried, and why, without the payload; the system administrator sees nothing (no personal data). A
# message of another Ambito is hidden.
route("GET", "/integration/outbox", grant(INTEGRATION | DPO, ANY))
route("GET", "/integration/outbox/{message_id}", grant(INTEGRATION | DPO, AMBITO))
route("POST", "/integration/outbox/{message_id}/retry", grant(INTEGRATION, AMBITO))
# ======================================================================================== services and measures
# Servizi (issue 13): accreditations are reference data of the Ambito (read by every role, written by the system
# administrator). An activation order comes from a plan's intervention: the comune orders, starts, suspends and ends
# the orders of its residents (the AS d'Ambito and the CSC every order of the Ambito, joint cases and CSC services);
# the sub-ambito coordinator reads its comuni's. The provider (ETS, RSA) reads only the orders addressed to its
# organisation (`other` is another ETS / RSA: 404), answers them, starts, suspends and ends them, and writes only its
# own delivery log (the case side writes none: 403). The cost of a plan is not the provider's (403); the SAD
# indicator is counts only (the analyst too). The order under the signed plan is the legal basis of the provider's
# view (art. 9.2.h GDPR, like the provider assignment of an intervention): consent does not gate these rows.
SV = "/services/activations"
SERVICE_READERS = COMUNE | COORD | AS_AMBITO | CSC
SERVICE_AMBITO = AS_AMBITO | CSC
# Catalogues without personal data answer any caller (the Region's helpdesk gets the measures, no rows of its own).
route("GET", "/catalogue/accreditations", grant(EVERYONE, ANY))
route("POST", "/catalogue/accreditations", grant(ADMIN, ANY))
route("POST", SV, grant(COMUNE, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
route("GET", SV, grant(SERVICE_READERS | PROVIDERS, ANY))
for p in ("", "/deliveries", "/summary"):
    route("GET", f"{SV}/{{activation_id}}{p}",
          grant(COMUNE | COORD | PROVIDERS, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
for action in ("accept", "decline", "deliveries"):
    route("POST", f"{SV}/{{activation_id}}/{action}", grant(PROVIDERS, CASE))
for action in ("start", "suspend", "resume", "end"):
    route("POST", f"{SV}/{{activation_id}}/{action}", grant(COMUNE | PROVIDERS, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
route("GET", "/services/plans/{plan_id}/costs", grant(COMUNE | COORD, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
route("GET", "/services/indicators/sad", grant(SERVICE_READERS | ANALYST, ANY))
# Misure (issue 13): the catalogue and the calls are reference data (read by every role; the measures' rules and the
# calls written by the system administrator, a call of another Ambito is not found). Applications are the comune's
# for its residents (the AS d'Ambito and the CSC, which runs the FNA measures, for the whole Ambito; the
# coordinator reads its sub-ambito's). A call's budget and counts are aggregates: the analyst reads them too.
MA = "/measures/applications"
route("GET", "/catalogue/measures", grant(EVERYONE, ANY))
route("PATCH", "/catalogue/measures/{code}", grant(ADMIN, ANY))
route("GET", "/catalogue/measure-calls", grant(EVERYONE, ANY))
route("POST", "/catalogue/measure-calls", grant(ADMIN, ANY))
route("PATCH", "/catalogue/measure-calls/{call_id}", grant(ADMIN, AMBITO))
route("GET", "/measures/calls/{call_id}", grant(SERVICE_READERS | ANALYST, AMBITO))
route("GET", "/measures/calls/{call_id}/waiting", grant(SERVICE_READERS, AMBITO))
route("POST", MA, grant(COMUNE, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
route("GET", MA, grant(SERVICE_READERS, ANY))
route("GET", f"{MA}/{{application_id}}", grant(COMUNE | COORD, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
for action in ("assessment", "eligibility", "project", "activation", "monitoring", "end", "withdraw"):
    route("POST", f"{MA}/{{application_id}}/{action}", grant(COMUNE, CASE, ambito=(SERVICE_AMBITO, AMBITO)))
# Indicatori LEPS e del Piano di Zona (issue 14): aggregates with small cells suppressed, no subject. CSC analysts
# and the Ufficio di Piano (analyst, csc_operator, the AS d'Ambito) read the whole Ambito; a comune its own comuni
# and the Ambito totals, a sub-ambito coordinator its sub-ambito: the rows differ, the answer is 200 for each.
REPORT_READERS = ANALYST | CSC | AS_AMBITO | COMUNE | COORD
route("GET", "/reports/indicators", grant(REPORT_READERS, ANY))
route("GET", "/reports/leps", grant(REPORT_READERS, ANY))  # the yearly report: the same rows over three years
# The persons behind a number: only roles that reach persons case by case (not the analyst), each seeing only the
# persons its row scope reaches (an empty list is a 200 too).
route("GET", "/reports/indicators/{code}/persons", grant(COMUNE | COORD | AS_AMBITO | CSC, ANY))
# Export jobs of the same reports: the same readers; a job and its file are the asking user's own row (`other` is
# another reader's job in the same Ambito, `other_ambito` one in the second Ambito: both 404).
route("POST", "/reports/exports", grant(REPORT_READERS, ANY))
route("GET", "/reports/exports", grant(REPORT_READERS, ANY))
for p in ("", "/file"):
    route("GET", f"/reports/exports/{{export_id}}{p}", grant(REPORT_READERS, CASE))
route("DELETE", "/reports/exports/{export_id}", grant(REPORT_READERS, CASE))  # cancel, or discard the ready file
# ================================================================================================= consent
# Cross-organisation access to a case of the social side needs the person's consent for the role's purpose, or a
# documented legal basis on the assignment (brief §6.4 and §2 A12 "see the outcome summary for their patients
# (consent-based)"): the ASST side (care for health: PUA operator, CdC, COT, ward), the MMG and the providers (ETS,
# RSA). The comune, its sub-ambito coordinator, the AS d'Ambito and the CSC services hold the social function.
CONSENT_ROLES = frozenset(R(r).value for r in ASST_PUA | CDC | COT | WARD | MMG | PROVIDERS)
# Routes whose `own` subject is the caller's own row, not case data reached through the cartella: consent does not
# gate them (a work item of one's queue, one's break-glass grant, the PUA request one registered or referred).
NOT_CONSENT_GATED = frozenset({
    ("POST", "/api/work-items/{item_id}/complete"),
    ("POST", "/api/break-glass/{grant_id}/end"),
    ("GET", "/api/pua/requests/{request_id}"),
    ("GET", "/api/discharges/{discharge_id}"),
    *{("POST", f"/api/discharges/{{discharge_id}}/{a}")
      for a in ("setting", "evaluation", "discharge", "monitoring", "close", "exit", "cancel")},
})


NOT_CONSENT_GATED = NOT_CONSENT_GATED | {(m, "/api" + p) for (m, p) in (
    ("GET", f"{WL}/applications/{{application_id}}"), ("GET", f"{WL}/units/{{unit_id}}"),
    ("POST", f"{WL}/units/{{unit_id}}/beds"), ("POST", f"{WL}/offers"),
    *[("POST", f"{WL}/applications/{{application_id}}/{a}")
      for a in ("decision", "assessment", "urgency", "confirm", "exit", "urgency/decision")],
    *[("POST", f"{WL}/offers/{{offer_id}}/{a}") for a in ("receipt", "accept", "refuse")])}


NOT_CONSENT_GATED = NOT_CONSENT_GATED | {(m, "/api" + p) for (m, p) in (
    *[("GET", f"{SV}/{{activation_id}}{p}") for p in ("", "/deliveries", "/summary")],
    *[("POST", f"{SV}/{{activation_id}}/{a}") for a in ("accept", "decline", "deliveries", "start", "suspend",
                                                          "resume", "end")])}


# The person itself: its identity view is open Ambito-wide to the registering roles (AMBITO), but a role that reaches
# the person through a case, where its consent is what the access rests on and it was revoked, is told so (403
# consent_required) rather than shown a lesser view of the case's person.
CONSENT_GATED_AMBITO = frozenset({("GET", "/api/persons/{person_id}")})


def expected(method: str, path: str, role: str, situation: str) -> str:
    row = EXPECTED[(method, path)][role]
    if situation != "revoked":
        return row[SITUATIONS.index(situation)]
    key = (method, path)
    gated = (row == CASE and key not in NOT_CONSENT_GATED) or (row == AMBITO and key in CONSENT_GATED_AMBITO)
    if role in CONSENT_ROLES and gated:
        return FORBIDDEN  # reached only through an assignment without legal basis, consent revoked
    return row[0]


def why_denied(method: str, path: str) -> dict[str, list[str]]:
    """The denials of one route, named: {"FORBIDDEN": [roles...], "HIDDEN other": [...], ...} (for reports)."""
    out: dict[str, list[str]] = {}
    for role in EXPECTED[(method, path)]:
        for sit in SITUATIONS:
            value = expected(method, path, role, sit)
            if value != ALLOW:
                out.setdefault(f"{value} {sit}", []).append(role)
    return out


# ================================================================================================= FHIR façade
# /fhir (issue 12) answers what its /api twin answers, through the same services, so it has the twin's cells: the
# Patient read is the person read (and is consent-gated the same way), the Patient search is the person search.
# The CapabilityStatement describes the server only: every authenticated caller reads it.
def fhir_route(method: str, path: str, table: dict[str, Cells]) -> None:
    key = (method.upper(), "/fhir" + path)
    assert key not in EXPECTED, f"duplicate route in the expected matrix: {key}"
    EXPECTED[key] = table


fhir_route("GET", "/metadata", cells(ANY))
fhir_route("GET", "/Patient", grant(SEARCHERS, ANY))
fhir_route("GET", "/Patient/{person_id}", grant(IDENTITY, AMBITO, minimal=(MINIMAL, CASE)))
fhir_route("GET", "/Patient/{person_id}/$everything", grant(IDENTITY, AMBITO, minimal=(MINIMAL, CASE)))
CONSENT_GATED_AMBITO = CONSENT_GATED_AMBITO | {("GET", "/fhir/Patient/{person_id}"),
                                               ("GET", "/fhir/Patient/{person_id}/$everything")}
_RELATIONS = grant(CASE_READERS, CASE, minimal=(MINIMAL, FULL_ONLY), steward=(STEWARD, NO_SCOPE))
fhir_route("GET", "/RelatedPerson", _RELATIONS)  # ?patient=: the person's relations
fhir_route("GET", "/RelatedPerson/{relation_id}", _RELATIONS)
fhir_route("GET", "/Organization", grant(AMBITO_ROLES, ANY))
fhir_route("GET", "/Organization/{org_id}", grant(AMBITO_ROLES, AMBITO))
fhir_route("GET", "/EpisodeOfCare", grant(CASE_READERS, CASE))  # ?patient=: the person's cartelle
fhir_route("GET", "/EpisodeOfCare/{cartella_id}", grant(CASE_READERS, CASE))
fhir_route("POST", "", grant(WARD, AMBITO))  # the discharge signal as a transaction Bundle: POST /api/discharges
# A discharge case is read as Encounter, ServiceRequest and Task: GET /api/discharges/{discharge_id}, not consent-gated.
for _type in ("Encounter", "ServiceRequest", "Task"):
    fhir_route("GET", f"/{_type}/{{discharge_id}}", EXPECTED[("GET", "/api/discharges/{discharge_id}")])
    NOT_CONSENT_GATED = NOT_CONSENT_GATED | {("GET", f"/fhir/{_type}/{{discharge_id}}")}
fhir_route("GET", "/Encounter", EXPECTED[("GET", "/api/discharges")])  # ?patient=: GET /api/discharges?person_id=


def either(a: dict[str, Cells], b: dict[str, Cells]) -> dict[str, Cells]:
    """A route answering for two twins: a cell is allowed where either twin allows it."""
    return {role: tuple(x if x == ALLOW else y for x, y in zip(a[role], b[role], strict=True)) for role in ROLES}


# A waiting-list application (issue 11), a PUA referral to the VMD or the COT and a service's activation order are
# a ServiceRequest and a Task too, each with its own id: the read routes serve every kind of row (their cells are
# tested on the discharge case; the other rows' rules are their /api twins', tested in
# tests/api/test_fhir_waiting_list.py and tests/api/test_fhir_referrals_orders.py), and the search lists every row
# the caller reads: any twin list lets it in.
for _type in ("ServiceRequest", "Task"):
    fhir_route("GET", f"/{_type}", either(either(either(
        EXPECTED[("GET", "/api/discharges")], EXPECTED[("GET", f"/api{WL}/applications")]),
        EXPECTED[("GET", "/api/pua/requests")]), EXPECTED[("GET", f"/api{SV}")]))
fhir_route("GET", "/Provenance", EXPECTED[("GET", "/api/discharges/{discharge_id}")])  # ?target=ServiceRequest/<id>
NOT_CONSENT_GATED = NOT_CONSENT_GATED | {("GET", "/fhir/Provenance")}
fhir_route("GET", "/Patient/{person_id}/_history", EXPECTED[("GET", "/api/persons/{person_id}/history")])
fhir_route("GET", "/Patient/{person_id}/_history/{version}", EXPECTED[("GET", "/api/persons/{person_id}/history")])
fhir_route("GET", "/Consent", EXPECTED[("GET", "/api/persons/{person_id}/consents")])  # ?patient=
fhir_route("GET", "/Consent/{consent_id}", EXPECTED[("GET", "/api/persons/{person_id}/consents")])
fhir_route("GET", "/CarePlan/{plan_id}", EXPECTED[("GET", "/api/care-plans/{plan_id}")])
fhir_route("GET", "/CarePlan", EXPECTED[("GET", "/api/cartelle/{cartella_id}/care-plans")])  # ?patient=: its cartelle's
fhir_route("GET", "/QuestionnaireResponse", EXPECTED[("GET", "/api/persons/{person_id}/vmd")])  # ?patient=
fhir_route("GET", "/Questionnaire", EXPECTED[("GET", "/api/instruments")])
fhir_route("GET", "/Questionnaire/{questionnaire_id}", EXPECTED[("GET", "/api/instruments/{code}/versions/{version}")])
fhir_route("GET", "/AuditEvent", EXPECTED[("GET", "/api/persons/{person_id}/access-log")])  # ?patient=
# The indicators as MeasureReport (issue 14): the same aggregates as GET /api/reports/indicators.
fhir_route("GET", "/MeasureReport", EXPECTED[("GET", "/api/reports/indicators")])
fhir_route("GET", "/MeasureReport/{report_id}", EXPECTED[("GET", "/api/reports/indicators")])
