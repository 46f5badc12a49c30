"""The attachment store: bytes live on disk outside the database, addressed by their SHA-256.

Content addressing makes a write idempotent and lets a read verify integrity. A file written by a request whose
transaction then rolls back stays as an orphan with no row pointing at it; it is never served (reads go through
the row) and can be swept. Production can replace this class with an object store with the same three methods.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class IntegrityError(Exception):
    pass


class FileStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("invalid storage key")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        return key

    def get(self, key: str) -> bytes:
        data = self._path(key).read_bytes()
        if hashlib.sha256(data).hexdigest() != key:
            raise IntegrityError(key)
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def default_store() -> FileStore:
    from domain.kernel.settings import get_settings

    return FileStore(get_settings().attachments_dir)
