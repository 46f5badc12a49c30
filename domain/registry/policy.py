"""Row rules for the person registry (minimal for now).

Identity data is shared inside one Ambito and never across two: every person query filters on the principal's
Ambito, and a person of another Ambito is reported as not found (404), never as forbidden, so that its existence
does not leak. Within the Ambito, what a principal sees of a person (identity / full / minimal projection) and
which persons a non-registering role may list are decided by domain.security.scopes (person_access,
case_access_filter); persons.py and queries.py apply them in the same query.
"""
from __future__ import annotations

import sqlalchemy as sa

from domain.registry.models import Person, PersonStatus
from domain.security.principal import Principal


def visible(principal: Principal) -> sa.ColumnElement[bool]:
    """Persons the principal may see at all: those of its Ambito."""
    return Person.ambito_id == principal.ambito_id


def active(principal: Principal) -> sa.ColumnElement[bool]:
    return sa.and_(visible(principal), Person.status == PersonStatus.active.value)
