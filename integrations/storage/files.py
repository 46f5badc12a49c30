"""The attachment store: bytes live on disk outside the database, addressed by their SHA-256.

Content addressing makes a write idempotent and lets a read verify integrity. A file written by a request whose
transaction then rolls back stays as an orphan with no row pointing at it; it is never served (reads go through
the row) and can be swept. Production can replace this class with an object store with the same three methods.

A full volume (ENOSPC, EDQUOT, or the optional ATTACHMENTS_QUOTA_BYTES reached) raises `InsufficientStorage`
(507) before any row is written, and leaves no partial file behind: the write goes to a temporary file that is
flushed to disk before it is renamed into place.
"""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from domain.kernel.errors import InsufficientStorage

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
FULL_REASON = "spazio di archiviazione esaurito sul server: l'allegato non è stato salvato, riprovare più tardi"


class IntegrityError(Exception):
    pass


class FileStore:
    def __init__(self, root: Path, quota_bytes: int = 0):
        self.root = Path(root)
        self.quota_bytes = quota_bytes  # 0: only the volume's own size limits the store

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("invalid storage key")
        return self.root / key[:2] / key[2:4] / key

    def used_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        tmp = None
        try:
            if self.quota_bytes and self.used_bytes() + len(data) > self.quota_bytes:
                raise OSError(errno.ENOSPC, "attachments quota reached")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # a full or failing volume shows here, before the row says "stored"
            os.replace(tmp, path)  # atomic: a reader never sees half a file
            tmp = None
        except OSError as e:
            if e.errno in FULL_ERRNOS:
                raise InsufficientStorage("file", FULL_REASON) from None
            raise
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        return key

    def get(self, key: str) -> bytes:
        data = self._path(key).read_bytes()
        if hashlib.sha256(data).hexdigest() != key:
            raise IntegrityError(key)
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True


def default_store() -> FileStore:
    from domain.kernel.settings import get_settings

    s = get_settings()
    return FileStore(s.attachments_dir, quota_bytes=s.attachments_quota_bytes)


def report_export_store() -> FileStore:
    from domain.kernel.settings import get_settings

    s = get_settings()
    return FileStore(s.report_exports_dir, quota_bytes=s.report_exports_quota_bytes)
