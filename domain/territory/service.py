"""Territory, organisations, service units and the service catalogue: reads scoped to the principal's Ambito,
admin writes. The organisation tree is kept as `ancestor_ids` on every row so that "everything under X" is one
GIN lookup (`ancestor_ids @> {X}`); every re-parenting rewrites the subtree in one UPDATE."""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.kernel.actor import Actor
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.territory.models import FundingSource, Organisation, OrgKind, ServiceType, ServiceUnit
from domain.territory.reference import SIDE_BY_KIND, udo_types

MAX_PAGE = 200


# ---------------------------------------------------------------- tree helpers (used by access control)
async def descendant_ids(session: AsyncSession, org_id: uuid.UUID) -> set[uuid.UUID]:
    """Every organisation under `org_id` (not itself), in one query on the GIN index of ancestor_ids."""
    rows = await session.execute(sa.select(Organisation.id).where(Organisation.ancestor_ids.contains([org_id])))
    return set(rows.scalars())


async def ancestor_ids(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    """The partOf chain of `org_id`, root (the Ambito) first, without the org itself. Unknown id → NotFound."""
    chain = (await session.execute(sa.select(Organisation.ancestor_ids).where(Organisation.id == org_id))).first()
    if chain is None:
        raise NotFound("Organizzazione non trovata.")
    return list(chain[0] or [])


async def _reparent(session: AsyncSession, org: Organisation, parent: Organisation) -> None:
    """Move `org` under `parent` and rewrite ancestor_ids of its whole subtree in one statement."""
    if parent.id == org.id or org.id in (parent.ancestor_ids or []):
        raise Invalid("part_of_id", "un'organizzazione non può essere spostata sotto sé stessa o un suo discendente")
    if parent.ambito_id != org.ambito_id:
        raise Invalid("part_of_id", "l'organizzazione di destinazione appartiene a un altro Ambito")
    new_prefix = [*(parent.ancestor_ids or []), parent.id]
    await session.execute(
        sa.update(Organisation)
        .where(Organisation.ancestor_ids.contains([org.id]))
        .values(ancestor_ids=sa.func.array_cat(
            sa.cast(new_prefix + [org.id], Organisation.__table__.c.ancestor_ids.type),
            Organisation.ancestor_ids[sa.func.array_position(Organisation.ancestor_ids, org.id) + 1:
                                      sa.func.cardinality(Organisation.ancestor_ids)]))
        .execution_options(synchronize_session=False))
    org.part_of_id = parent.id
    org.ancestor_ids = new_prefix
    await session.flush()


# ---------------------------------------------------------------- organisations
def _visible(principal: Actor):
    return Organisation.ambito_id == principal.ambito_id


async def get_organisation(session: AsyncSession, *, principal: Actor, org_id: uuid.UUID) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None or org.ambito_id != principal.ambito_id:
        raise NotFound("Organizzazione non trovata.")  # another Ambito's rows do not exist for this user
    return org


async def get_ambito(session: AsyncSession, *, principal: Actor) -> dict[str, Any]:
    amb = await get_organisation(session=session, principal=principal, org_id=principal.ambito_id)
    counts = dict((await session.execute(
        sa.select(Organisation.kind, sa.func.count()).where(
            _visible(principal), Organisation.kind.in_([OrgKind.sub_ambito, OrgKind.comune]))
        .group_by(Organisation.kind))).all())
    return {"ambito": amb, "sub_ambiti": counts.get(OrgKind.sub_ambito, 0), "comuni": counts.get(OrgKind.comune, 0)}


async def list_organisations(session: AsyncSession, *, principal: Actor, kind: OrgKind | str | None = None,
                             part_of: uuid.UUID | None = None, under: uuid.UUID | None = None,
                             ambito: uuid.UUID | None = None, active: bool | None = None, limit: int = 50,
                             cursor: str | None = None) -> tuple[list[Organisation], str | None]:
    """Keyset on `code`. `under` = every descendant (GIN); `part_of` = direct children only."""
    if ambito is not None and ambito != principal.ambito_id:
        return [], None
    limit = max(1, min(limit, MAX_PAGE))
    q = sa.select(Organisation).where(_visible(principal))
    if kind:
        q = q.where(Organisation.kind == str(kind))
    if part_of:
        q = q.where(Organisation.part_of_id == part_of)
    if under:
        q = q.where(Organisation.ancestor_ids.contains([under]))
    if active is not None:
        q = q.where(Organisation.active.is_(active))
    if cursor:
        q = q.where(Organisation.code > cursor)
    rows = list((await session.execute(q.order_by(Organisation.code).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].code if len(rows) > limit else None
    return rows[:limit], nxt


async def list_sub_ambiti(session: AsyncSession, *, principal: Actor) -> list[tuple[Organisation, int, int]]:
    """Sub-ambiti with the number of comuni and the estimated population (one query)."""
    c = aliased(Organisation)
    q = (sa.select(Organisation, sa.func.count(c.id), sa.func.coalesce(sa.func.sum(c.population_estimate), 0))
         .outerjoin(c, sa.and_(c.part_of_id == Organisation.id, c.kind == OrgKind.comune))
         .where(_visible(principal), Organisation.kind == OrgKind.sub_ambito)
         .group_by(Organisation.id).order_by(Organisation.name))
    return [(o, n, int(p)) for o, n, p in (await session.execute(q)).all()]


async def list_comuni(session: AsyncSession, *, principal: Actor, sub_ambito_id: uuid.UUID | None = None,
                      provisional: bool | None = None) -> list[tuple[Organisation, Organisation | None]]:
    """The comuni of the principal's Ambito (48 at most for Crema: a bounded list) with their sub-ambito."""
    sub = aliased(Organisation)
    q = (sa.select(Organisation, sub).outerjoin(sub, sub.id == Organisation.part_of_id)
         .where(_visible(principal), Organisation.kind == OrgKind.comune))
    if sub_ambito_id:
        q = q.where(Organisation.part_of_id == sub_ambito_id)
    if provisional is not None:
        q = q.where(Organisation.provisional.is_(provisional))
    return [(c, s) for c, s in (await session.execute(q.order_by(Organisation.name)))]


async def get_comune(session: AsyncSession, *, principal: Actor,
                     comune_id: uuid.UUID) -> tuple[Organisation, Organisation | None]:
    comune = await get_organisation(session=session, principal=principal, org_id=comune_id)
    if comune.kind != OrgKind.comune:
        raise NotFound("Comune non trovato.")
    sub = await session.get(Organisation, comune.part_of_id) if comune.part_of_id else None
    return comune, sub


async def move_comune(session: AsyncSession, *, principal: Actor, comune_id: uuid.UUID,
                      sub_ambito_id: uuid.UUID, provisional: bool | None = None) -> Organisation:
    """Admin: assign a comune to another sub-ambito. The subtree's ancestors and the sub-ambito of the service units
    located in the comune follow. `provisional` is kept unless given (confirming the mapping sets it false)."""
    comune = await get_organisation(session=session, principal=principal, org_id=comune_id)
    if comune.kind != OrgKind.comune:
        raise NotFound("Comune non trovato.")
    target = await session.get(Organisation, sub_ambito_id)
    if target is None or target.ambito_id != principal.ambito_id or target.kind != OrgKind.sub_ambito:
        raise Invalid("sub_ambito_id", "sub-ambito inesistente in questo Ambito")
    if target.id != comune.part_of_id:
        await _reparent(session, comune, target)
        await session.execute(sa.update(ServiceUnit).where(ServiceUnit.comune_id == comune.id)
                              .values(sub_ambito_id=target.id).execution_options(synchronize_session=False))
    if provisional is not None:
        comune.provisional = provisional
    await session.flush()
    return comune


_NOT_CREATABLE = {OrgKind.ambito, OrgKind.comune}


async def create_organisation(session: AsyncSession, *, principal: Actor, data) -> Organisation:
    """Admin: a new organisation of the principal's Ambito (Ambiti and comuni come only from the reference files,
    comuni with their ISTAT codes). The side follows the kind."""
    kind = OrgKind(data.kind)
    if kind in _NOT_CREATABLE:
        raise Invalid("kind", "Ambiti e comuni si caricano dai dati di riferimento (load-reference)")
    parent_id = data.part_of_id or principal.ambito_id
    parent = await session.get(Organisation, parent_id)
    if parent is None or parent.ambito_id != principal.ambito_id:
        raise Invalid("part_of_id", "organizzazione di appartenenza inesistente in questo Ambito")
    if kind == OrgKind.sub_ambito and parent.kind != OrgKind.ambito:
        raise Invalid("part_of_id", "un sub-ambito appartiene direttamente all'Ambito")
    if (await session.execute(sa.select(Organisation.id).where(Organisation.code == data.code))).first():
        raise Conflict("Codice organizzazione già in uso.", field="code")
    org = Organisation(code=data.code, name=data.name, kind=kind, side=SIDE_BY_KIND[kind], unit_type=data.unit_type,
                       part_of_id=parent.id, ancestor_ids=[*(parent.ancestor_ids or []), parent.id],
                       ambito_id=principal.ambito_id, provisional=data.provisional,
                       attributes=dict(data.attributes or {}))
    session.add(org)
    await session.flush()
    return org


async def update_organisation(session: AsyncSession, *, principal: Actor, org_id: uuid.UUID,
                              data) -> Organisation:
    org = await get_organisation(session=session, principal=principal, org_id=org_id)
    changes = data.model_dump(exclude_unset=True)
    if "part_of_id" in changes:
        new_parent_id = changes.pop("part_of_id")
        if org.kind == OrgKind.ambito:
            raise Invalid("part_of_id", "l'Ambito è la radice dell'albero")
        if new_parent_id is None:
            raise Invalid("part_of_id", "campo obbligatorio")
        if new_parent_id != org.part_of_id:
            parent = await session.get(Organisation, new_parent_id)
            if parent is None or parent.ambito_id != principal.ambito_id:
                raise Invalid("part_of_id", "organizzazione di appartenenza inesistente in questo Ambito")
            if org.kind == OrgKind.comune:
                if parent.kind != OrgKind.sub_ambito:
                    raise Invalid("part_of_id", "un comune appartiene a un sub-ambito")
                await move_comune(session=session, principal=principal, comune_id=org.id, sub_ambito_id=parent.id)
            else:
                await _reparent(session, org, parent)
    for key, value in changes.items():
        if value is None and key in ("name", "provisional", "active", "attributes"):
            raise Invalid(key, "campo obbligatorio")
        setattr(org, key, value)
    await session.flush()
    return org


# ---------------------------------------------------------------- service units
async def list_service_units(session: AsyncSession, *, principal: Actor, udo_type: str | None = None,
                             sub_ambito_id: uuid.UUID | None = None, comune_id: uuid.UUID | None = None,
                             operator_id: uuid.UUID | None = None, active: bool | None = None, limit: int = 50,
                             cursor: str | None = None) -> tuple[list[ServiceUnit], str | None]:
    limit = max(1, min(limit, MAX_PAGE))
    q = sa.select(ServiceUnit).where(ServiceUnit.ambito_id == principal.ambito_id)
    if udo_type:
        q = q.where(ServiceUnit.udo_type == udo_type)
    if sub_ambito_id:
        q = q.where(ServiceUnit.sub_ambito_id == sub_ambito_id)
    if comune_id:
        q = q.where(ServiceUnit.comune_id == comune_id)
    if operator_id:
        q = q.where(ServiceUnit.operator_id == operator_id)
    if active is not None:
        q = q.where(ServiceUnit.active.is_(active))
    if cursor:
        q = q.where(ServiceUnit.code > cursor)
    rows = list((await session.execute(q.order_by(ServiceUnit.code).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].code if len(rows) > limit else None
    return rows[:limit], nxt


async def get_service_unit(session: AsyncSession, *, principal: Actor, unit_id: uuid.UUID) -> ServiceUnit:
    unit = await session.get(ServiceUnit, unit_id)
    if unit is None or unit.ambito_id != principal.ambito_id:
        raise NotFound("Unità d'offerta non trovata.")
    return unit


async def update_service_unit(session: AsyncSession, *, principal: Actor, unit_id: uuid.UUID,
                              data) -> ServiceUnit:
    """Admin: places, name, measures, provisional/active. Places must satisfy contracted ≤ accredited ≤ authorised."""
    unit = await get_service_unit(session=session, principal=principal, unit_id=unit_id)
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "provisional", "active", "measures"):
        if key in changes and changes[key] is None:
            raise Invalid(key, "campo obbligatorio")
    for key, value in changes.items():
        setattr(unit, key, value)
    auth, accr, contr = unit.places_authorised, unit.places_accredited, unit.places_contracted
    errors = []
    if accr is not None and auth is not None and accr > auth:
        errors.append(("places_accredited", "non può superare i posti autorizzati"))
    if contr is not None and accr is not None and contr > accr:
        errors.append(("places_contracted", "non può superare i posti accreditati"))
    if errors:
        raise Invalid.many(errors)
    await session.flush()
    return unit


def list_udo_types() -> list[dict[str, Any]]:
    """UDO types are file-backed reference data (schemas/reference/catalogue/udo_types.yaml)."""
    return list(udo_types().values())


def udo_type_label(code: str) -> str | None:
    t = udo_types().get(code)
    return t["label"] if t else None


# ---------------------------------------------------------------- catalogue
async def list_service_types(session: AsyncSession, *, category: str | None = None, leps: bool | None = None,
                             active: bool | None = True) -> list[ServiceType]:
    q = sa.select(ServiceType)
    if category:
        q = q.where(ServiceType.category == category)
    if leps is not None:
        q = q.where(ServiceType.leps.is_(leps))
    if active is not None:
        q = q.where(ServiceType.active.is_(active))
    return list((await session.execute(q.order_by(ServiceType.code))).scalars())


async def list_funding_sources(session: AsyncSession, *, active: bool | None = True) -> list[FundingSource]:
    q = sa.select(FundingSource)
    if active is not None:
        q = q.where(FundingSource.active.is_(active))
    return list((await session.execute(q.order_by(FundingSource.code))).scalars())


async def _create_coded(session: AsyncSession, model, data, what: str):
    if await session.get(model, data.code) is not None:
        raise Conflict(f"{what} con codice già esistente.", field="code")
    row = model(**data.model_dump())
    session.add(row)
    await session.flush()
    return row


async def _update_coded(session: AsyncSession, model, code: str, data, what: str):
    row = await session.get(model, code)
    if row is None:
        raise NotFound(f"{what} non trovato.")
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise Invalid(key, "campo obbligatorio")
        setattr(row, key, value)
    await session.flush()
    return row


async def create_service_type(session: AsyncSession, *, principal: Actor, data) -> ServiceType:
    if data.code in ("adi", "assegno_inclusione"):
        raise Invalid("code", "codice ambiguo: usare adi_cdom per l'assistenza domiciliare integrata; "
                              "l'Assegno di Inclusione non è un tipo di servizio")
    return await _create_coded(session, ServiceType, data, "Tipo di servizio")


async def update_service_type(session: AsyncSession, *, principal: Actor, code: str, data) -> ServiceType:
    return await _update_coded(session, ServiceType, code, data, "Tipo di servizio")


async def create_funding_source(session: AsyncSession, *, principal: Actor, data) -> FundingSource:
    return await _create_coded(session, FundingSource, data, "Fonte di finanziamento")


async def update_funding_source(session: AsyncSession, *, principal: Actor, code: str,
                                data) -> FundingSource:
    return await _update_coded(session, FundingSource, code, data, "Fonte di finanziamento")
