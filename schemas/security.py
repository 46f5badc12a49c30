"""Public contracts of users, system clients, role assignments, teams and `/me`."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.kernel.validity import active_on
from domain.security.models import ROLE_LABELS, TEAM_TYPE_LABELS, Role, TeamType, UserKind

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,119}$"
SCOPE_PATTERN = r"^[a-z][a-z0-9._:-]{0,79}$"
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,79}$"

USER_KIND_LABELS = {"person": "Operatore", "system": "Client di sistema"}
SIDE_LABELS = {
    "asst": "ASST", "comune": "Comune", "ambito": "Ambito", "csc": "Comunità Sociale Cremasca",
    "third_sector": "Terzo Settore", "provider": "Ente gestore", "ats": "ATS", "primary_care": "Medicina generale",
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OrgChoice(_In):
    """An organisation by id or by code (exactly one)."""

    organisation_id: uuid.UUID | None = Field(default=None, description="Organizzazione (id).")
    organisation_code: str | None = Field(default=None, max_length=80,
                                          description="Organizzazione (codice, es. 'comune-offanengo').")

    @model_validator(mode="after")
    def _one_org(self):
        if self.organisation_id is not None and self.organisation_code is not None:
            raise ValueError("indicare organisation_id oppure organisation_code, non entrambi")
        return self


class RoleAssignmentCreate(_OrgChoice):
    """Assegnazione di un ruolo in un'organizzazione per un periodo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"role": "comune_social_worker", "organisation_code": "comune-offanengo", "valid_from": "2026-03-02"}]})

    role: Role = Field(description="Ruolo.")
    valid_from: date | None = Field(default=None, description="Inizio validità (predefinito: oggi).")
    valid_to: date | None = Field(default=None, description="Fine validità inclusa (facoltativa).")

    @model_validator(mode="after")
    def _needs_org_and_order(self):
        if self.organisation_id is None and self.organisation_code is None:
            raise ValueError("organizzazione obbligatoria (organisation_id o organisation_code)")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to deve seguire valid_from (è il primo giorno non più valido)")
        return self


class PeriodEnd(_In):
    """Fine di un periodo; il corpo si può omettere."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"valid_to": "2026-03-31"}]})

    valid_to: date | None = Field(default=None, description="Ultimo giorno di validità (predefinito: oggi).")


class UserCreate(_In):
    """Nuovo operatore o client di sistema."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"username": "as.ripalta", "display_name": "Giulia Conti", "profession": "assistente sociale",
         "email": "giulia.conti@comune.ripaltacremasca.cr.it",
         "roles": [{"role": "comune_social_worker", "organisation_code": "comune-ripalta-cremasca"}]},
        {"username": "asst-gateway", "display_name": "Gateway FHIR ASST", "kind": "system",
         "scopes": ["fhir.read", "fhir.write"]}]})

    username: str = Field(pattern=USERNAME_PATTERN, description="Identificativo di accesso (minuscolo).")
    display_name: str = Field(min_length=1, max_length=200, description="Nome visualizzato.")
    kind: UserKind = Field(default=UserKind.person, description="'person' (operatore) o 'system' (client).")
    profession: str | None = Field(default=None, max_length=60, description="Profilo professionale (es. IFeC).")
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                              description="Posta elettronica.")
    scopes: list[str] = Field(default_factory=list, max_length=50,
                              description="Solo client di sistema: scope concessi (es. fhir.read).")
    roles: list[RoleAssignmentCreate] = Field(default_factory=list, max_length=50,
                                              description="Assegnazioni di ruolo iniziali (facoltative).")

    @model_validator(mode="after")
    def _scopes(self):
        import re

        bad = [s for s in self.scopes if not re.match(SCOPE_PATTERN, s)]
        if bad:
            raise ValueError("scope non valido: " + ", ".join(bad))
        return self


class UserUpdate(_In):
    """Modifica parziale di un utente: solo i campi presenti cambiano."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"profession": "coordinatrice", "active": True}]})

    display_name: str | None = Field(default=None, min_length=1, max_length=200, description="Nome visualizzato.")
    profession: str | None = Field(default=None, max_length=60, description="Profilo professionale.")
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                              description="Posta elettronica.")
    active: bool | None = Field(default=None, description="false disattiva l'utente (i token vengono rifiutati).")
    scopes: list[str] | None = Field(default=None, max_length=50, description="Solo client di sistema.")


class OrganisationRef(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    side: str
    side_label: str

    @classmethod
    def of(cls, o: Any) -> OrganisationRef:
        return cls(id=o.id, code=o.code, name=o.name, kind=str(o.kind), side=str(o.side),
                   side_label=SIDE_LABELS.get(str(o.side), str(o.side)))


class RoleAssignmentPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    role_label: str
    organisation: OrganisationRef
    valid_from: date
    valid_to: date | None
    active: bool = Field(description="Il ruolo vale oggi: nel periodo di validità e approvato")
    pending: bool = Field(default=False, description=(
        "In attesa dell'approvazione di un secondo amministratore: un ruolo che dà accesso a dati personali non "
        "vale finché non è approvato"))
    requested_by: uuid.UUID | None = None
    approved_by: uuid.UUID | None = None

    @classmethod
    def of(cls, a: Any, org: Any, *, today: date) -> RoleAssignmentPublic:
        return cls(id=a.id, user_id=a.user_id, role=a.role, role_label=ROLE_LABELS[str(a.role)],
                   organisation=OrganisationRef.of(org), valid_from=a.valid_from, valid_to=a.valid_to,
                   active=active_on(a.valid_from, a.valid_to, today) and not a.pending, pending=bool(a.pending),
                   requested_by=a.requested_by, approved_by=a.approved_by)


class MembershipPublic(BaseModel):
    """A membership seen from the user: which team, bringing which organisation (side)."""

    id: uuid.UUID
    team_id: uuid.UUID
    team_code: str
    team_name: str
    team_type: TeamType
    team_type_label: str
    organisation: OrganisationRef
    role_in_team: str | None
    valid_from: date
    valid_to: date | None
    active: bool


class UserPublic(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    kind: UserKind
    kind_label: str
    profession: str | None
    email: str | None
    scopes: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, u: Any) -> UserPublic:
        return cls(id=u.id, username=u.username, display_name=u.display_name, kind=u.kind,
                   kind_label=USER_KIND_LABELS[str(u.kind)], profession=u.profession, email=u.email,
                   scopes=list(u.scopes or []), active=u.active, created_at=u.created_at)


class UserDetail(UserPublic):
    roles: list[RoleAssignmentPublic] = []
    teams: list[MembershipPublic] = []


class UserPage(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None = Field(default=None, description="Da passare come `cursor` per la pagina successiva.")


class TeamCreate(_OrgChoice):
    """Nuova équipe dell'Ambito."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "team-vmd-soncino", "name": "Équipe VMD sub-ambito di Soncino", "type": "vmd_equipe",
         "organisation_code": "ambito-crema"}]})

    code: str = Field(pattern=CODE_PATTERN, description="Codice univoco (es. 'team-vmd-crema').")
    name: str = Field(min_length=1, max_length=200, description="Denominazione.")
    type: TeamType = Field(description="Tipo di équipe.")


class TeamMemberCreate(_OrgChoice):
    """Nuovo membro dell'équipe."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"user_id": "a3bb189e-8bf9-3888-9912-ace4e6543002", "organisation_code": "comune-offanengo",
         "role_in_team": "assistente sociale"}]})

    user_id: uuid.UUID = Field(description="Utente che entra nell'équipe.")
    role_in_team: str | None = Field(default=None, max_length=60, description="Es. 'assistente sociale'.")
    valid_from: date | None = Field(default=None, description="Predefinito: oggi.")
    valid_to: date | None = Field(default=None, description="Ultimo giorno (facoltativo).")

    @model_validator(mode="after")
    def _order(self):
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to deve seguire valid_from (è il primo giorno non più valido)")
        return self


class TeamMemberPublic(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    display_name: str
    organisation: OrganisationRef
    role_in_team: str | None
    valid_from: date
    valid_to: date | None
    active: bool


class TeamPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    type: TeamType
    type_label: str
    organisation: OrganisationRef | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, t: Any, org: Any | None) -> TeamPublic:
        return cls(id=t.id, code=t.code, name=t.name, type=t.type, type_label=TEAM_TYPE_LABELS[str(t.type)],
                   organisation=OrganisationRef.of(org) if org is not None else None, active=t.active,
                   created_at=t.created_at)


class TeamDetail(TeamPublic):
    members: list[TeamMemberPublic] = []
    sides: list[str] = Field(default_factory=list, description="Lati rappresentati dai membri attivi.")


class TeamPage(BaseModel):
    items: list[TeamPublic]
    next_cursor: str | None = None


class MePublic(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    kind: UserKind
    profession: str | None
    ambito: OrganisationRef
    roles: list[RoleAssignmentPublic] = Field(description="Ruoli attivi oggi, con l'organizzazione.")
    teams: list[MembershipPublic] = Field(description="Équipe di cui si è membri oggi.")
    permissions: list[str]
    scopes: list[str] = Field(default_factory=list, description="Solo client di sistema.")
    acting_for: str | None = Field(default=None, description="Solo client di sistema: professionista per cui agisce.")
