"""Where file bytes live: a protocol the domain writes to, implemented outside it
(integrations.storage.files.FileStore on a shared volume; an object store would have the same methods).
The composition root installs the implementation of each area (attachments, report exports); the domain never
imports it. Areas are kept apart because a store is content-addressed: deleting an expired export's bytes must
never remove an attachment that happens to hold the same bytes."""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

ATTACHMENTS = "attachments"


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store the bytes; returns the key that reads them back (idempotent for the same bytes)."""

    def get(self, key: str) -> bytes:
        """The bytes of `key`; raises when they are missing or do not match their key."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove the bytes of `key`; False when there were none."""


_factories: dict[str, Callable[[], BlobStore]] = {}


def install(factory: Callable[[], BlobStore], *, area: str = ATTACHMENTS) -> None:
    """The factory is called at each use, so a store configured from settings follows them."""
    _factories[area] = factory


def blob_store(area: str = ATTACHMENTS) -> BlobStore:
    factory = _factories.get(area)
    if factory is None:
        raise RuntimeError(f"no blob store installed for {area!r}: the composition root (deploy.composition.compose) "
                           "must run first")
    return factory()
