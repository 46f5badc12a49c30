"""Every foreign key to person.id must be registered in domain.kernel.person_refs: re-pointed on merge, or keeping
the old id on purpose. A new table that forgets makes this test fail."""
import sqlalchemy as sa
from sqlmodel import SQLModel

import domain.models  # noqa: F401  (every context's tables)
from domain.kernel import person_refs


def _fks_to_person(metadata: sa.MetaData) -> list[tuple[str, str]]:
    return sorted((t.name, fk.parent.name) for t in metadata.tables.values() for fk in t.foreign_keys
                  if fk.target_fullname == "person.id")


async def test_every_foreign_key_to_person_is_accounted_for():
    refs = _fks_to_person(SQLModel.metadata)
    assert ("person_relation", "person_id") in refs and ("cartella", "person_id") in refs  # the walk finds them
    missing = [f"{t}.{c}" for t, c in refs if not person_refs.is_accounted(t, c)]
    assert missing == [], f"register these in domain.kernel.person_refs: {missing}"
    assert person_refs.unaccounted(SQLModel.metadata) == []


async def test_the_checker_reports_an_unregistered_reference():
    md = sa.MetaData()
    sa.Table("person", md, sa.Column("id", sa.Uuid, primary_key=True))
    sa.Table("new_thing", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("person_id", sa.Uuid, sa.ForeignKey("person.id")),
             sa.Column("other_id", sa.Integer))
    sa.Table("person_relation", md, sa.Column("id", sa.Uuid, primary_key=True),
             sa.Column("person_id", sa.Uuid, sa.ForeignKey("person.id")))  # registered: not reported
    assert person_refs.unaccounted(md) == ["new_thing.person_id"]


async def test_repointed_and_kept_references_are_distinct():
    repointed = {(r.table, r.column) for r in person_refs.repointed()}
    assert ("work_item", "person_id") in repointed and ("person_relation", "related_person_id") in repointed
    assert ("person_merge", "merged_id") not in repointed and person_refs.is_accounted("person_merge", "merged_id")
