"""Where attachment bytes live: a protocol the domain writes to, implemented outside it
(integrations.storage.files.FileStore on a shared volume; an object store would have the same three methods).
The composition root installs the implementation; the domain never imports it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store the bytes; returns the key that reads them back (idempotent for the same bytes)."""

    def get(self, key: str) -> bytes:
        """The bytes of `key`; raises when they are missing or do not match their key."""

    def exists(self, key: str) -> bool: ...


_factory: Callable[[], BlobStore] | None = None


def install(factory: Callable[[], BlobStore]) -> None:
    """The factory is called at each use, so a store configured from settings follows them."""
    global _factory
    _factory = factory


def blob_store() -> BlobStore:
    if _factory is None:
        raise RuntimeError("no blob store installed: the composition root (deploy.composition.compose) must run first")
    return _factory()
