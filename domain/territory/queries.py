"""What other contexts may read of the territory: small readers over organisations, the catalogue and funding
sources. Nobody outside this context selects these tables directly."""
from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel import session_memo
from domain.kernel.errors import Invalid
from domain.territory.models import FundingSource, Organisation, OrgKind, ServiceType, ServiceUnit


def _ids(values: Iterable[uuid.UUID | None]) -> list[uuid.UUID]:
    return sorted({v for v in values if v is not None}, key=str)


async def get_org(session: AsyncSession, org_id: uuid.UUID | None) -> Organisation | None:
    return await session.get(Organisation, org_id) if org_id is not None else None


async def get_orgs(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Organisation]:
    wanted = _ids(ids)
    if not wanted:
        return {}
    return {o.id: o for o in (await session.execute(
        sa.select(Organisation).where(Organisation.id.in_(wanted)))).scalars()}


# The readers every discharge signal runs, as statement objects built once (cache keys computed once).
_BY_CODES = sa.select(Organisation).where(Organisation.code.in_(sa.bindparam("codes", expanding=True)))
_COMUNI_OF = (sa.select(Organisation.id)
              .where(Organisation.id.in_(sa.bindparam("ids", expanding=True)),
                     Organisation.kind == OrgKind.comune.value, Organisation.ambito_id == sa.bindparam("ambito_id"))
              .order_by(Organisation.id))
_ASST_UNITS = sa.select(Organisation).where(
    Organisation.ambito_id == sa.bindparam("ambito_id"), Organisation.active.is_(True),
    Organisation.kind == OrgKind.asst_unit.value, Organisation.unit_type.in_(sa.bindparam("types", expanding=True)))
_ASST_UNITS_AMONG = _ASST_UNITS.where(Organisation.id.in_(sa.bindparam("ids", expanding=True))).order_by(
    Organisation.code)
_ASST_UNITS = _ASST_UNITS.order_by(Organisation.code)


_CODE_MEMO = "territory.org_by_code"


async def org_by_code(session: AsyncSession, code: str) -> Organisation | None:
    return (await orgs_by_code(session, [code])).get(code)


async def orgs_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Organisation]:
    """The organisations with these codes, in one statement; remembered for the session (forgotten when it writes
    an organisation): the memo also keeps the rows in the session's identity map, so a later `get_org` /
    `asst_unit` of one of them (a Bundle's ward) reads no row again."""
    codes = list(codes)
    wanted = sorted({c for c in codes if session_memo.peek(session, (_CODE_MEMO, c)) is session_memo.MISSING})
    if wanted:
        found = {o.code: o for o in (await session.execute(_BY_CODES, {"codes": wanted})).scalars()}
        for c in wanted:
            session_memo.put(session, (_CODE_MEMO, c), found.get(c))
    known = {c: session_memo.peek(session, (_CODE_MEMO, c)) for c in codes}
    return {c: org for c, org in known.items() if isinstance(org, Organisation)}


session_memo.watch("organisation", _CODE_MEMO)


async def active_org(session: AsyncSession, org_id: uuid.UUID, ambito_id: uuid.UUID) -> Organisation | None:
    """The organisation if it is active and is the Ambito or belongs to it."""
    return (await session.execute(sa.select(Organisation).where(
        Organisation.id == org_id, Organisation.active.is_(True),
        sa.or_(Organisation.ambito_id == ambito_id, Organisation.id == ambito_id))
    )).scalar_one_or_none()


async def comuni_of_ambito(session: AsyncSession, ids: Iterable[uuid.UUID | None],
                           ambito_id: uuid.UUID) -> list[uuid.UUID]:
    """Those of `ids` that are comuni of the Ambito, in a stable order."""
    wanted = _ids(ids)
    if not wanted:
        return []
    return list((await session.execute(_COMUNI_OF, {"ids": wanted, "ambito_id": ambito_id})).scalars())


async def comuni_codes(session: AsyncSession, ambito_id: uuid.UUID) -> list[tuple[uuid.UUID, str | None, str | None,
                                                                                 str]]:
    """(id, ISTAT code, Belfiore code, name) of the Ambito's comuni: what an import resolves comune columns
    against."""
    return [tuple(r) for r in (await session.execute(
        sa.select(Organisation.id, Organisation.istat_code, Organisation.belfiore_code, Organisation.name)
        .where(Organisation.kind == OrgKind.comune.value, Organisation.ambito_id == ambito_id)
        .order_by(Organisation.name))).all()]


async def org_names(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = _ids(ids)
    if not wanted:
        return {}
    return dict((await session.execute(
        sa.select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted)))).all())


async def org_sides(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """The side (asst, comune, ambito, csc, …) each organisation speaks for."""
    wanted = _ids(ids)
    if not wanted:
        return {}
    return {k: str(v) for k, v in (await session.execute(
        sa.select(Organisation.id, Organisation.side).where(Organisation.id.in_(wanted)))).all()}


async def asst_units(session: AsyncSession, ambito_id: uuid.UUID, unit_types: Iterable[str], *,
                     ids: Iterable[uuid.UUID] | None = None) -> list[Organisation]:
    """Active ASST units of these types (PUA seats, Case di Comunità, COT, wards) of the Ambito, by code."""
    params = {"ambito_id": ambito_id, "types": list(unit_types)}
    if ids is not None:
        params["ids"] = _ids(ids) or [uuid.UUID(int=0)]
    return list((await session.execute(_ASST_UNITS if ids is None else _ASST_UNITS_AMONG, params)).scalars())


async def asst_unit(session: AsyncSession, ambito_id: uuid.UUID, unit_types: Iterable[str],
                    org_id: uuid.UUID) -> Organisation | None:
    """The organisation if it is one of `asst_units(...)`: read through the session's identity map, so a unit the
    request has already loaded (a Bundle's ward, matched on its code) costs no second statement."""
    org = await get_org(session, org_id)
    ok = (org is not None and org.active and org.ambito_id == ambito_id and str(org.kind) == OrgKind.asst_unit.value
          and org.unit_type in set(unit_types))
    return org if ok else None


def orgs_under(org_ids: list[uuid.UUID]) -> sa.Select:
    """The organisations `org_ids` and every one below them (a role on a sub-ambito reaches its comuni): a
    sub-query for row filters, on the GIN index of ancestor_ids."""
    return sa.select(Organisation.id).where(sa.or_(
        Organisation.id.in_(org_ids),
        Organisation.ancestor_ids.overlap(sa.cast(org_ids, Organisation.ancestor_ids.type))))


def org_name_sql(org_id_col) -> ColumnElement[str]:
    """The organisation's name as a correlated scalar sub-query (for read views that list many rows)."""
    return sa.select(Organisation.name).where(Organisation.id == org_id_col).scalar_subquery()


async def _by_code(session: AsyncSession, model, codes: Iterable[str | None]) -> dict:
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return {}
    return {r.code: r for r in (await session.execute(sa.select(model).where(model.code.in_(wanted)))).scalars()}


async def service_types(session: AsyncSession, codes: Iterable[str | None]) -> dict[str, ServiceType]:
    return await _by_code(session, ServiceType, codes)


async def funding_sources(session: AsyncSession, codes: Iterable[str | None]) -> dict[str, FundingSource]:
    return await _by_code(session, FundingSource, codes)


async def _require_code(session: AsyncSession, model, code: str, field: str, what: str):
    """An active row of a coded catalogue, or Invalid naming the field and listing the codes that are allowed."""
    row = await session.get(model, code)
    if row is None or not row.active:
        allowed = (await session.execute(sa.select(model.code).where(model.active.is_(True))
                                         .order_by(model.code))).scalars().all()
        raise Invalid(field, f"{what} (ammessi: {', '.join(allowed)})")
    return row


async def require_service_type(session: AsyncSession, code: str, *, field: str = "service_type") -> ServiceType:
    return await _require_code(session, ServiceType, code, field, "servizio non presente nel catalogo")


async def require_funding_source(session: AsyncSession, code: str, *, field: str = "funding_source") -> FundingSource:
    return await _require_code(session, FundingSource, code, field, "fonte di finanziamento non prevista")


COT_UNIT_TYPE = "cot"


async def cot_for(session: AsyncSession, *, ambito_id: uuid.UUID, comune_id: uuid.UUID | None,
                  given: uuid.UUID | None = None, field: str = "cot_org_id") -> Organisation:
    """The Centrale Operativa Territoriale that serves a comune: with one COT in the Ambito, that one; with several,
    the one whose `attributes.comuni` (organisation codes or ids) lists the comune. `given` is checked instead.
    Invalid naming `field` when there is none or it cannot be told."""
    if given is not None:
        found = await asst_units(session, ambito_id, [COT_UNIT_TYPE], ids=[given])
        if not found:
            raise Invalid(field, "non è una Centrale Operativa Territoriale dell'Ambito")
        return found[0]
    cots = await asst_units(session, ambito_id, [COT_UNIT_TYPE])
    if len(cots) == 1:
        return cots[0]
    if comune_id is not None and cots:
        comune = await get_org(session, comune_id)
        keys = {str(comune_id), comune.code if comune else ""}
        served = [c for c in cots if keys & {str(x) for x in (c.attributes or {}).get("comuni", [])}]
        if len(served) == 1:
            return served[0]
    if not cots:
        raise Invalid(field, "nessuna COT attiva nell'Ambito")
    raise Invalid(field, "non è possibile determinare la COT del domicilio: indicarla")


async def units(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, ServiceUnit]:
    """Service units (UDO) by id."""
    wanted = _ids(ids)
    if not wanted:
        return {}
    rows = (await session.execute(sa.select(ServiceUnit).where(ServiceUnit.id.in_(wanted)))).scalars()
    return {u.id: u for u in rows}


def units_operated_by(org_ids: list[uuid.UUID]) -> sa.Select:
    """Ids of the active units whose operator is one of `org_ids` (a UDO operator's own units): a sub-query for
    row filters."""
    return sa.select(ServiceUnit.id).where(ServiceUnit.operator_id.in_(org_ids), ServiceUnit.active.is_(True))


def comune_facts() -> sa.Subquery:
    """The comuni of every Ambito with their sub-ambito (id, ambito_id, sub_ambito_id, name): indicators stratified by
    sub-ambito group the comune of residence by it (a read-only projection for reporting)."""
    return sa.select(Organisation.id, Organisation.ambito_id, Organisation.part_of_id.label("sub_ambito_id"),
                     Organisation.name).where(Organisation.kind == OrgKind.comune.value).subquery("comune_facts")


async def ambito_tree(session: AsyncSession, ambito_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str,
                                                                                        uuid.UUID | None]]:
    """(id, kind, name, part_of_id) of the Ambito's sub-ambiti and comuni, by name: the rows of a stratified
    report, including those with nothing to count."""
    return [tuple(r) for r in (await session.execute(
        sa.select(Organisation.id, Organisation.kind, Organisation.name, Organisation.part_of_id)
        .where(Organisation.ambito_id == ambito_id,
               Organisation.kind.in_([OrgKind.sub_ambito.value, OrgKind.comune.value]))
        .order_by(Organisation.name, Organisation.id))).all()]
