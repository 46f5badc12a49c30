"""Merge-safe references: every table pointing at a person registers its foreign key here, so a merge re-points
all of them in one place. A test walks the metadata and fails when a foreign key to person.id is registered
neither as re-pointed nor as keeping the old id on purpose (history, merge records)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

# A hook runs before the UPDATE, e.g. to close a duplicate open cartella that would clash with a unique index.
MergeHook = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class PersonRef:
    table: str
    column: str
    before_merge: MergeHook | None = None


_repointed: dict[tuple[str, str], PersonRef] = {}
_kept: set[tuple[str, str]] = set()


def _name(model: Any) -> str:
    return model if isinstance(model, str) else model.__tablename__


def register(model: Any, column: str, *, before_merge: MergeHook | None = None) -> None:
    ref = PersonRef(_name(model), column, before_merge)
    _repointed[(ref.table, column)] = ref


def before_merge(model: Any, column: str, hook: MergeHook) -> None:
    """Attach a hook to a registered reference. The composition root does it: the hook's module (the owner's
    service) sits above the models that register the column."""
    key = (_name(model), column)
    if key not in _repointed:
        raise KeyError(f"{key} is not registered as re-pointed on merge")
    _repointed[key] = PersonRef(key[0], column, hook)


def keep_old_id(model: Any, column: str) -> None:
    _kept.add((_name(model), column))


def repointed() -> list[PersonRef]:
    return sorted(_repointed.values(), key=lambda r: (r.table, r.column))


def is_accounted(table: str, column: str) -> bool:
    return (table, column) in _repointed or (table, column) in _kept


async def repoint_all(session, *, kept_id, merged_id) -> dict[str, int]:
    """Re-point every registered reference from the merged person to the kept one. Returns rows per column."""
    counts: dict[str, int] = {}
    for ref in repointed():
        if ref.before_merge is not None:
            await ref.before_merge(session, kept_id=kept_id, merged_id=merged_id)
        t = sa.table(ref.table, sa.column(ref.column))
        res = await session.execute(
            sa.update(t).where(t.c[ref.column] == merged_id).values({ref.column: kept_id})
        )
        counts[f"{ref.table}.{ref.column}"] = res.rowcount
    return counts


def unaccounted(metadata: sa.MetaData) -> list[str]:
    """Every `table.column` of `metadata` with a foreign key to person.id that is registered neither as re-pointed
    on merge nor as keeping the old id on purpose. A merge would silently leave such rows on the tombstone."""
    out: set[str] = set()
    for table in metadata.tables.values():
        for fk in table.foreign_keys:
            if fk.target_fullname == "person.id" and not is_accounted(table.name, fk.parent.name):
                out.add(f"{table.name}.{fk.parent.name}")
    return sorted(out)
