"""Territorio: Ambito, sub-ambiti, comuni, organizzazioni, unità d'offerta, catalogo dei servizi."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from api.deps import Authorized, Session
from domain.security.permissions import Permission
from domain.territory import service as svc
from domain.territory.models import OrgKind
from schemas.territory import (
    AmbitoPublic,
    ComuneList,
    ComunePublic,
    ComuneUpdate,
    FundingSourceCreate,
    FundingSourcePublic,
    FundingSourceUpdate,
    OrganisationCreate,
    OrganisationPage,
    OrganisationPublic,
    OrganisationUpdate,
    ServiceTypeCreate,
    ServiceTypePublic,
    ServiceTypeUpdate,
    ServiceUnitPage,
    ServiceUnitPublic,
    ServiceUnitUpdate,
    SubAmbitoPublic,
    UdoTypePublic,
)

router = APIRouter(tags=["territorio"])

Reader = Authorized(Permission.territory_read)
Admin = Authorized(Permission.territory_admin)


# ---------------------------------------------------------------- Ambito, sub-ambiti, comuni
@router.get("/territory/ambiti/me", response_model=AmbitoPublic, summary="Il mio Ambito",
            description="L'Ambito territoriale dell'utente, con il numero di sub-ambiti e di comuni.")
async def my_ambito(session: Session, principal: Reader) -> AmbitoPublic:
    r = await svc.get_ambito(session=session, principal=principal)
    return AmbitoPublic(ambito=OrganisationPublic.of(r["ambito"]), population=r["ambito"].population_estimate,
                        sub_ambiti=r["sub_ambiti"], comuni=r["comuni"])


@router.get("/territory/sub-ambiti", response_model=list[SubAmbitoPublic], summary="Sub-ambiti",
            description="I sub-ambiti dell'Ambito dell'utente, con numero di comuni e popolazione stimata.")
async def list_sub_ambiti(session: Session, principal: Reader) -> list[SubAmbitoPublic]:
    rows = await svc.list_sub_ambiti(session=session, principal=principal)
    return [SubAmbitoPublic(id=o.id, code=o.code, name=o.name, capital=(o.attributes or {}).get("capital"),
                            comuni=n, population_estimate=p) for o, n, p in rows]


@router.get("/territory/comuni", response_model=ComuneList, summary="Comuni",
            description="I comuni dell'Ambito (elenco limitato, non paginato) con codici ISTAT e Belfiore, "
                        "sub-ambito di appartenenza e stima della popolazione. `provisional` indica "
                        "un'assegnazione al sub-ambito non ancora confermata.")
async def list_comuni(session: Session, principal: Reader, sub_ambito_id: uuid.UUID | None = None,
                      provisional: bool | None = None) -> ComuneList:
    rows = await svc.list_comuni(session=session, principal=principal, sub_ambito_id=sub_ambito_id,
                                 provisional=provisional)
    return ComuneList(items=[ComunePublic.of(c, s) for c, s in rows])


@router.get("/territory/comuni/{comune_id}", response_model=ComunePublic, summary="Dettaglio comune",
            description="Il comune con codici ISTAT e Belfiore, sub-ambito e stima della popolazione.")
async def get_comune(comune_id: uuid.UUID, session: Session, principal: Reader) -> ComunePublic:
    c, s = await svc.get_comune(session=session, principal=principal, comune_id=comune_id)
    return ComunePublic.of(c, s)


@router.patch("/territory/comuni/{comune_id}", response_model=ComunePublic,
              summary="Sposta un comune in un altro sub-ambito",
              description="Solo amministratori. Assegna il comune al sub-ambito indicato; le organizzazioni e le "
                          "unità d'offerta collegate seguono. Il flag `provisional` resta invariato se non indicato.")
async def move_comune(comune_id: uuid.UUID, body: ComuneUpdate, session: Session, principal: Admin) -> ComunePublic:
    await svc.move_comune(session=session, principal=principal, comune_id=comune_id,
                          sub_ambito_id=body.sub_ambito_id, provisional=body.provisional)
    c, s = await svc.get_comune(session=session, principal=principal, comune_id=comune_id)
    return ComunePublic.of(c, s)


# ---------------------------------------------------------------- organisations
@router.get("/organisations", response_model=OrganisationPage, summary="Organizzazioni",
            description="Organizzazioni dell'Ambito dell'utente, filtrabili per tipo, appartenenza diretta "
                        "(`part_of`) o discendenza (`under`). Paginazione per cursore (ordinate per codice).")
async def list_organisations(session: Session, principal: Reader, kind: OrgKind | None = None,
                             part_of: uuid.UUID | None = None, under: uuid.UUID | None = None,
                             ambito: uuid.UUID | None = None, active: bool | None = None,
                             limit: int = Query(default=50, ge=1, le=200),
                             cursor: str | None = None) -> OrganisationPage:
    items, nxt = await svc.list_organisations(session=session, principal=principal, kind=kind, part_of=part_of,
                                              under=under, ambito=ambito, active=active, limit=limit, cursor=cursor)
    return OrganisationPage(items=[OrganisationPublic.of(o) for o in items], next_cursor=nxt)


@router.get("/organisations/{org_id}", response_model=OrganisationPublic, summary="Dettaglio organizzazione",
            description="L'organizzazione con tipo, lato istituzionale, appartenenza e attributi.")
async def get_organisation(org_id: uuid.UUID, session: Session, principal: Reader) -> OrganisationPublic:
    return OrganisationPublic.of(await svc.get_organisation(session=session, principal=principal, org_id=org_id))


@router.post("/organisations", response_model=OrganisationPublic, status_code=status.HTTP_201_CREATED,
             summary="Crea un'organizzazione",
             description="Solo amministratori. Crea un ente nell'Ambito dell'utente (non Ambiti né comuni, che "
                         "provengono dai dati di riferimento). Il lato istituzionale deriva dal tipo.")
async def create_organisation(body: OrganisationCreate, session: Session, principal: Admin) -> OrganisationPublic:
    return OrganisationPublic.of(await svc.create_organisation(session=session, principal=principal, data=body))


@router.patch("/organisations/{org_id}", response_model=OrganisationPublic, summary="Modifica un'organizzazione",
              description="Solo amministratori. Nome, appartenenza (il sottoalbero viene aggiornato), attributi, "
                          "stato.")
async def update_organisation(org_id: uuid.UUID, body: OrganisationUpdate, session: Session,
                              principal: Admin) -> OrganisationPublic:
    o = await svc.update_organisation(session=session, principal=principal, org_id=org_id, data=body)
    return OrganisationPublic.of(o)


# ---------------------------------------------------------------- service units
@router.get("/service-units", response_model=ServiceUnitPage, summary="Unità d'offerta",
            description="Unità d'offerta (RSA, CDI, RSD, CSS, CDD, cure intermedie, hospice...) dell'Ambito, con "
                        "posti autorizzati, accreditati e a contratto. Paginazione per cursore.")
async def list_service_units(session: Session, principal: Reader, udo_type: str | None = None,
                             sub_ambito: uuid.UUID | None = None, comune: uuid.UUID | None = None,
                             operator: uuid.UUID | None = None, active: bool | None = None,
                             limit: int = Query(default=50, ge=1, le=200),
                             cursor: str | None = None) -> ServiceUnitPage:
    items, nxt = await svc.list_service_units(session=session, principal=principal, udo_type=udo_type,
                                              sub_ambito_id=sub_ambito, comune_id=comune, operator_id=operator,
                                              active=active, limit=limit, cursor=cursor)
    return ServiceUnitPage(items=[ServiceUnitPublic.of(u, svc.udo_type_label(u.udo_type)) for u in items],
                           next_cursor=nxt)


@router.get("/service-units/{unit_id}", response_model=ServiceUnitPublic, summary="Dettaglio unità d'offerta",
            description="L'unità d'offerta con tipologia, ente gestore, posti autorizzati, accreditati e a "
                        "contratto e misure erogate.")
async def get_service_unit(unit_id: uuid.UUID, session: Session, principal: Reader) -> ServiceUnitPublic:
    u = await svc.get_service_unit(session=session, principal=principal, unit_id=unit_id)
    return ServiceUnitPublic.of(u, svc.udo_type_label(u.udo_type))


@router.patch("/service-units/{unit_id}", response_model=ServiceUnitPublic, summary="Modifica un'unità d'offerta",
              description="Solo amministratori. Posti (a contratto ≤ accreditati ≤ autorizzati), nome, misure, "
                          "stato.")
async def update_service_unit(unit_id: uuid.UUID, body: ServiceUnitUpdate, session: Session,
                              principal: Admin) -> ServiceUnitPublic:
    u = await svc.update_service_unit(session=session, principal=principal, unit_id=unit_id, data=body)
    return ServiceUnitPublic.of(u, svc.udo_type_label(u.udo_type))


# ---------------------------------------------------------------- catalogue
@router.get("/catalogue/service-types", response_model=list[ServiceTypePublic], summary="Tipi di servizio",
            description="Catalogo dei servizi e delle misure (SAD, ADI/C-DOM, ADM, SAAP, PIS...), con categoria e "
                        "indicazione LEPS.")
async def list_service_types(session: Session, principal: Reader, category: str | None = None,
                             leps: bool | None = None, active: bool | None = True) -> list[ServiceTypePublic]:
    rows = await svc.list_service_types(session=session, category=category, leps=leps, active=active)
    return [ServiceTypePublic.model_validate(r) for r in rows]


@router.post("/catalogue/service-types", response_model=ServiceTypePublic, status_code=status.HTTP_201_CREATED,
             summary="Aggiungi un tipo di servizio", description="Solo amministratori.")
async def create_service_type(body: ServiceTypeCreate, session: Session, principal: Admin) -> ServiceTypePublic:
    return ServiceTypePublic.model_validate(
        await svc.create_service_type(session=session, principal=principal, data=body))


@router.patch("/catalogue/service-types/{code}", response_model=ServiceTypePublic,
              summary="Modifica un tipo di servizio", description="Solo amministratori.")
async def update_service_type(code: str, body: ServiceTypeUpdate, session: Session,
                              principal: Admin) -> ServiceTypePublic:
    return ServiceTypePublic.model_validate(
        await svc.update_service_type(session=session, principal=principal, code=code, data=body))


@router.get("/catalogue/udo-types", response_model=list[UdoTypePublic], summary="Tipologie di unità d'offerta",
            description="Tipologie di UDO (RSA, CDI, RSD, CSS, CDD, CSE, SFA...) con rete e indicazione "
                        "residenziale. Dati di riferimento in sola lettura (file del catalogo).")
async def list_udo_types(principal: Reader) -> list[UdoTypePublic]:
    return [UdoTypePublic(**t) for t in svc.list_udo_types()]


@router.get("/catalogue/funding-sources", response_model=list[FundingSourcePublic],
            summary="Fonti di finanziamento", description="FNA, FNPS, FSR, Fondo Povertà, fondi comunali, PNRR...")
async def list_funding_sources(session: Session, principal: Reader,
                               active: bool | None = True) -> list[FundingSourcePublic]:
    return [FundingSourcePublic.model_validate(r)
            for r in await svc.list_funding_sources(session=session, active=active)]


@router.post("/catalogue/funding-sources", response_model=FundingSourcePublic, status_code=status.HTTP_201_CREATED,
             summary="Aggiungi una fonte di finanziamento", description="Solo amministratori.")
async def create_funding_source(body: FundingSourceCreate, session: Session,
                                principal: Admin) -> FundingSourcePublic:
    return FundingSourcePublic.model_validate(
        await svc.create_funding_source(session=session, principal=principal, data=body))


@router.patch("/catalogue/funding-sources/{code}", response_model=FundingSourcePublic,
              summary="Modifica una fonte di finanziamento", description="Solo amministratori.")
async def update_funding_source(code: str, body: FundingSourceUpdate, session: Session,
                                principal: Admin) -> FundingSourcePublic:
    return FundingSourcePublic.model_validate(
        await svc.update_funding_source(session=session, principal=principal, code=code, data=body))
