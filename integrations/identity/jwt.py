"""Bearer JWT verification with python-jose (cryptography backend). The only module that imports jose.

Keys are loaded once: a local public key file (PEM) or a JWKS URL cached for `jwks_cache_seconds`.
`algorithms` is always pinned, so the token header never chooses the algorithm (no `none`, no HS256 with a
public key). `iss`, `aud`, `exp` and `nbf` are checked.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from jose.exceptions import JOSEError

from domain.kernel import clock
from domain.kernel.settings import Settings, get_settings

DEV_KID = "pua-dev-1"


class TokenError(Exception):
    """Any reason a token is refused. The message is for logs only, never for the client."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    scopes: tuple[str, ...]
    acting_for: str | None
    raw: dict[str, Any]


class KeySet:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        if settings.jwks_url is None:
            self._keys = _load_local_public_keys(settings)

    def get(self, kid: str | None) -> Any:
        if self.settings.jwks_url and (time.monotonic() - self._fetched_at > self.settings.jwks_cache_seconds
                                       or kid not in self._keys):
            self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        key = self._keys.get(kid or "")
        if key is None:
            raise TokenError("unknown kid")
        return key

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._fetched_at < 1.0:  # at most one fetch a second, even for unknown kids
                return
            with urllib.request.urlopen(self.settings.jwks_url, timeout=5) as r:  # noqa: S310 (configured URL)
                doc = json.load(r)
            self._keys = {k["kid"]: jwk.construct(k) for k in doc.get("keys", []) if "kid" in k}
            self._fetched_at = time.monotonic()


def _dev_paths(settings: Settings) -> tuple[Path, Path]:
    d = settings.dev_keys_dir
    return d / "dev-private.pem", d / "dev-public.pem"


def ensure_dev_keys(settings: Settings | None = None) -> tuple[Path, Path]:
    """An RSA key pair for development and tests, made once."""
    settings = settings or get_settings()
    priv, pub = _dev_paths(settings)
    if not priv.exists():
        priv.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        priv.chmod(0o600)
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def _load_local_public_keys(settings: Settings) -> dict[str, Any]:
    path = settings.jwt_public_key_file or ensure_dev_keys(settings)[1]
    return {DEV_KID: jwk.construct(Path(path).read_text(), "RS256")}


_keyset: KeySet | None = None


def keyset() -> KeySet:
    global _keyset
    if _keyset is None:
        _keyset = KeySet(get_settings())
    return _keyset


def reset_keyset() -> None:
    global _keyset
    _keyset = None


def verify(token: str) -> TokenClaims:
    s = get_settings()
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in s.jwt_algorithms:
            raise TokenError("algorithm not allowed")
        key = keyset().get(header.get("kid"))
        claims = jwt.decode(token, key, algorithms=s.jwt_algorithms, audience=s.jwt_audience, issuer=s.jwt_issuer,
                            options={"require_exp": True, "require_sub": True, "leeway": 0,
                                     "verify_exp": False, "verify_nbf": False})
    except TokenError:
        raise
    except (JOSEError, ValueError, KeyError, TypeError) as e:
        raise TokenError(type(e).__name__) from None
    # Time claims are checked against the business clock, so a fixed clock in tests governs them too.
    now = clock.now().timestamp()
    if "exp" not in claims or now >= float(claims["exp"]):
        raise TokenError("expired")
    if "nbf" in claims and now < float(claims["nbf"]):
        raise TokenError("not yet valid")
    scope = claims.get("scope") or ""
    scopes = tuple(scope.split()) if isinstance(scope, str) else tuple(scope)
    return TokenClaims(subject=str(claims["sub"]), scopes=scopes, acting_for=claims.get("act_for"), raw=claims)


def issue_dev_token(subject: str, *, scopes: list[str] | None = None, acting_for: str | None = None,
                    minutes: int | None = None, not_before: datetime | None = None,
                    extra: dict[str, Any] | None = None) -> str:
    """Signs a token with the local development key. Production tokens come from the identity provider."""
    s = get_settings()
    priv = Path(s.jwt_private_key_file or ensure_dev_keys(s)[0]).read_text()
    now = clock.now()
    claims: dict[str, Any] = {
        "iss": s.jwt_issuer, "aud": s.jwt_audience, "sub": subject, "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()), "nbf": int((not_before or now).timestamp()),
        "exp": int((now + timedelta(minutes=minutes or s.dev_token_minutes)).timestamp()),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    if acting_for:
        claims["act_for"] = acting_for
    claims.update(extra or {})
    return jwt.encode(claims, priv, algorithm="RS256", headers={"kid": DEV_KID})
