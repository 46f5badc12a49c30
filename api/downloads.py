"""HTTP details of a file download: which format the client accepts, and how to name the file."""
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


def preferred(accept: str | None, offered: list[str]) -> str | None:
    """The media type of `offered` the Accept header prefers (q-values; the most specific range that matches a
    type decides its q: type/subtype, then type/*, then */*); ties go to the first offered. No header (or an empty
    one): the first offered. None: the header accepts none of them (406)."""
    if not accept or not accept.strip():
        return offered[0]
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = [x.strip() for x in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        if media:
            ranges[media.lower()] = max(q, ranges.get(media.lower(), 0.0))
    best, best_q = None, 0.0
    for media in offered:
        for candidate in (media, media.split("/")[0] + "/*", "*/*"):
            if candidate in ranges:
                if ranges[candidate] > best_q:
                    best, best_q = media, ranges[candidate]
                break
    return best
