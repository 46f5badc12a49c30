"""Headers of a file download."""
from __future__ import annotations

import unicodedata
from urllib.parse import quote

# RFC 8187 attr-char beyond letters and digits: what may stay unencoded in `filename*`.
_ATTR_CHARS = "!#$&+-.^_`|~"


def _ascii_fallback(filename: str) -> str:
    """The name in printable ASCII for clients without RFC 8187: accents dropped (è → e), anything else that
    cannot be written, a quote, a backslash or a percent sign becomes "_"."""
    out = []
    for c in filename:
        plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode("ascii")
        plain = "".join(ch for ch in plain if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%')
        out.append(plain or "_")
    return "".join(out) or "download"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """`Content-Disposition` per RFC 6266: an ASCII `filename="..."` fallback and the exact name as
    `filename*=UTF-8''...` (percent-encoded UTF-8), so any name (’, €, emoji) makes a valid header."""
    return (f'{disposition}; filename="{_ascii_fallback(filename)}"; '
            f"filename*=UTF-8''{quote(filename, safe=_ATTR_CHARS, encoding='utf-8')}")
