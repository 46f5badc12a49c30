"""Bearer JWT verification with python-jose (cryptography backend). The only module that imports jose.

Hardening, in the order `verify` applies it:
- size cap (8 KiB) before any parsing; the header must be a JSON object without `crit`;
- the algorithm is pinned: only asymmetric algorithms (RS256/384/512, ES256/384/512) ever reach the verifier, and
  only those listed in JWT_ALGORITHMS. `none`, HS256 (e.g. signed with the public key as secret) and any other
  header `alg` are refused before a key is looked up;
- the key is chosen by `kid` from a key set loaded once: a JWKS URL (cached for JWKS_CACHE_SECONDS, refetched at most
  every JWKS_MIN_REFETCH_SECONDS for an unknown kid, so rotation is picked up but random kids cannot hammer the
  identity provider), or a local file (PEM public key or certificate, or a JWKS JSON document). The header `alg`
  must equal the key's own algorithm (an EC key never verifies an RS256 token and vice versa);
- `iss` and `aud` are required and checked, `sub` must be a non-empty string; `exp` is required, `nbf` and `iat`
  are checked, all against the real wall clock (never the business clock of `domain.kernel.clock`, which demos and
  tests may freeze: a frozen clock would make an expired token valid for ever), with `LEEWAY_SECONDS` of tolerated
  clock skew. `iat` may not be in the future and a token may not live longer than JWT_MAX_LIFETIME_SECONDS (from
  `iat`, or from now when the token has no `iat`).
Every failure is a `TokenError` whose message is for the server log only: the API answers one uniform 401.

Without JWKS_URL or JWT_PUBLIC_KEY_FILE the service would verify with a development key made on the spot:
`require_production_keys` refuses that unless DEV_MODE is on.
"""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt
from jose.exceptions import JOSEError

from domain.kernel.settings import Settings, get_settings

DEV_KID = "pua-dev-1"
MAX_TOKEN_BYTES = 8192
MAX_JWKS_BYTES = 1 << 20
LEEWAY_SECONDS = 30
# The only algorithms this service will ever verify with: asymmetric signatures.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
_EC_CURVE_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512",
                 "secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

log = structlog.get_logger("identity.jwt")


class TokenError(Exception):
    """Any reason a token is refused. The message is for logs only, never for the client."""


class InsecureConfiguration(RuntimeError):
    """The service was asked to start in a way that is only acceptable in development."""


def wall_clock() -> float:
    """Token times are real times: the business clock may be frozen (PUA_FIXED_NOW, tests)."""
    return time.time()


def require_production_keys(settings: Settings | None = None) -> None:
    """Refuse to run on development signing keys unless DEV_MODE says so: anybody holding the dev private key (it
    is generated next to the code) could sign a token for any user."""
    s = settings or get_settings()
    if s.jwks_url or s.jwt_public_key_file or s.dev_mode:
        return
    raise InsecureConfiguration(
        "Nessuna chiave di verifica dei token configurata: impostare JWKS_URL o JWT_PUBLIC_KEY_FILE "
        "(oppure DEV_MODE=true, solo in sviluppo).")


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    scopes: tuple[str, ...]
    acting_for: str | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    alg: str
    key: Any  # jose Key object, constructed once


# ---------------------------------------------------------------------------------------------------- key loading
def _alg_for_public_key(public_key: Any) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        alg = _EC_CURVE_ALG.get(public_key.curve.name)
        if alg:
            return alg
    raise ValueError(f"unsupported public key type {type(public_key).__name__}")


def _key_from_pem(pem: str, kid: str) -> VerificationKey:
    data = pem.encode()
    if b"CERTIFICATE" in data:
        public_key = x509.load_pem_x509_certificate(data).public_key()
        pem = public_key.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    else:
        public_key = serialization.load_pem_public_key(data)
    alg = _alg_for_public_key(public_key)
    return VerificationKey(kid, alg, jwk.construct(pem, alg))


def _alg_for_jwk(entry: dict[str, Any]) -> str | None:
    alg = entry.get("alg")
    kty = entry.get("kty")
    if kty == "RSA":
        inferred = "RS256"
        if alg in ("RS256", "RS384", "RS512"):
            inferred = alg
        elif alg is not None:
            return None
        return inferred
    if kty == "EC":
        inferred = _EC_CURVE_ALG.get(entry.get("crv", ""))
        if inferred is None or (alg is not None and alg != inferred):
            return None
        return inferred
    return None  # 'oct' (symmetric) and anything else: never


def keys_from_jwks(doc: Any, allowed: frozenset[str]) -> dict[str, VerificationKey]:
    """Signature keys of a JWKS document, by kid. Symmetric, encryption-only or malformed entries are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWKS document")
    out: dict[str, VerificationKey] = {}
    for entry in doc["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
            continue
        if entry.get("use", "sig") != "sig" or "d" in entry:  # never accept private key material
            continue
        alg = _alg_for_jwk(entry)
        if alg is None or alg not in allowed:
            continue
        try:
            out[entry["kid"]] = VerificationKey(entry["kid"], alg, jwk.construct(entry, alg))
        except (JOSEError, ValueError, TypeError, KeyError):
            log.warning("jwks_entry_skipped", kid_length=len(entry["kid"]))
    return out


def load_key_file(path: Path, allowed: frozenset[str]) -> dict[str, VerificationKey]:
    """A PEM public key / certificate (kid `pua-dev-1`) or a JWKS JSON document (keys by their kid)."""
    text = Path(path).read_text()
    if text.lstrip().startswith("{"):
        keys = keys_from_jwks(json.loads(text), allowed)
    else:
        k = _key_from_pem(text, DEV_KID)
        keys = {DEV_KID: k} if k.alg in allowed else {}
    if not keys:
        raise ValueError(f"no usable signature key in {path}")
    return keys


class KeySet:
    """The verification keys, loaded once. Remote (JWKS URL) sets are refreshed when older than
    `jwks_cache_seconds`, and on an unknown kid at most every `min_refetch_seconds`. A failed refresh keeps the
    keys already known (logged), so an identity provider outage does not log everybody out at once."""

    def __init__(self, settings: Settings, *, timer: Callable[[], float] = time.monotonic,
                 min_refetch_seconds: float | None = None, fetch_timeout: float = 5.0):
        self.settings = settings
        configured = [a for a in settings.jwt_algorithms]
        bad = [a for a in configured if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not configured:
            raise ValueError(f"JWT_ALGORITHMS may only list asymmetric algorithms, got {configured}")
        self.algorithms = frozenset(configured)
        self.url = settings.jwks_url
        self.remote = bool(self.url)
        if self.remote and urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("JWKS_URL must be an http(s) URL")
        self._timer = timer
        self.min_refetch_seconds = (settings.jwks_min_refetch_seconds if min_refetch_seconds is None
                                    else min_refetch_seconds)
        self.fetch_timeout = fetch_timeout
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()
        self.fetches = 0
        if not self.remote:
            require_production_keys(settings)
            path = settings.jwt_public_key_file or ensure_dev_keys(settings)[1]
            self._keys = load_key_file(Path(path), self.algorithms)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def needs_fetch(self, kid: str | None) -> bool:
        if not self.remote:
            return False
        now = self._timer()
        since_attempt = float("inf") if self._attempted_at is None else now - self._attempted_at
        cache = self.settings.jwks_cache_seconds
        if self._fetched_at is None or now - self._fetched_at >= cache:
            # Never fetched or expired: fetch; after a failed attempt, back off before the next one.
            return since_attempt >= min(self.min_refetch_seconds, cache)
        if kid is not None and kid not in self._keys:
            return since_attempt >= self.min_refetch_seconds  # rotation, rate-limited against random kids
        return False

    def refresh(self, kid: str | None = None) -> None:
        with self._lock:
            if not self.needs_fetch(kid):  # another thread did it meanwhile
                return
            self._attempted_at = self._timer()
            self.fetches += 1
            try:
                keys = keys_from_jwks(self._download(), self.algorithms)
            except Exception as e:  # noqa: BLE001  (network, HTTP, JSON: keep the keys we have)
                log.warning("jwks_fetch_failed", error_type=type(e).__name__, keys_kept=len(self._keys))
                return
            self._keys = keys
            self._fetched_at = self._attempted_at
            log.info("jwks_fetched", keys=len(keys))

    def _download(self) -> Any:
        req = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=self.fetch_timeout) as r:
            if r.status != 200:
                raise ValueError(f"HTTP {r.status}")
            body = r.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        return json.loads(body)

    def get(self, kid: str | None, alg: str) -> VerificationKey:
        if self.needs_fetch(kid):
            self.refresh(kid)
        if kid is None:
            if len(self._keys) != 1:
                raise TokenError("token without kid and more than one key")
            key = next(iter(self._keys.values()))
        else:
            key = self._keys.get(kid)
            if key is None:
                raise TokenError("unknown kid")
        if key.alg != alg:
            raise TokenError("algorithm does not match the key")
        return key


# ---------------------------------------------------------------------------------------------------- dev keys
def _dev_paths(settings: Settings) -> tuple[Path, Path]:
    d = settings.dev_keys_dir
    return d / "dev-private.pem", d / "dev-public.pem"


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_dev_keys(settings: Settings | None = None) -> tuple[Path, Path]:
    """An RSA key pair for development and tests, made once (atomically: concurrent processes agree)."""
    settings = settings or get_settings()
    priv, pub = _dev_paths(settings)
    if not (priv.exists() and pub.exists()):
        priv.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        lock = priv.parent / ".keygen.lock"
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            if not (priv.exists() and pub.exists()):
                _atomic_write(pub, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo),
                              0o644)
                _atomic_write(priv, key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()), 0o600)
        finally:
            os.close(fd)
    return priv, pub


_keyset: KeySet | None = None
_keyset_lock = threading.Lock()


def keyset() -> KeySet:
    global _keyset
    if _keyset is None:
        with _keyset_lock:
            if _keyset is None:
                _keyset = KeySet(get_settings())
    return _keyset


def use_keyset(ks: KeySet | None) -> None:
    """Install a key set for the process (tests; an app wired to another identity provider)."""
    global _keyset
    _keyset = ks


def reset_keyset() -> None:
    use_keyset(None)


# ---------------------------------------------------------------------------------------------------- verification
def _peek_header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        raise TokenError("empty or oversized token")
    try:
        header = jwt.get_unverified_header(token)
    except (JOSEError, ValueError, TypeError, UnicodeError) as e:
        raise TokenError(f"malformed: {type(e).__name__}") from None
    if not isinstance(header, dict):
        raise TokenError("header is not an object")
    return header


def _number(claims: dict[str, Any], name: str) -> float | None:
    v = claims.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TokenError(f"{name} is not a number")
    return float(v)


def _check_times(claims: dict[str, Any], *, now: float, max_lifetime: float) -> None:
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenError("no exp")
    if now >= exp + LEEWAY_SECONDS:
        raise TokenError("expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and now + LEEWAY_SECONDS < nbf:
        raise TokenError("not yet valid")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + LEEWAY_SECONDS:
        raise TokenError("issued in the future")
    # A token minted with a far exp (or a far-future iat, refused above) would outlive any revocation we can do.
    start = now if iat is None else iat
    if exp - start > max_lifetime + LEEWAY_SECONDS:
        raise TokenError("lifetime too long")


def verify(token: str, *, keys: KeySet | None = None) -> TokenClaims:
    ks = keys or keyset()
    s = ks.settings
    header = _peek_header(token)
    alg = header.get("alg")
    kid = header.get("kid")
    if not isinstance(alg, str) or alg not in ks.algorithms:
        raise TokenError("algorithm not allowed")
    if kid is not None and (not isinstance(kid, str) or len(kid) > 200):
        raise TokenError("bad kid")
    if "crit" in header:
        raise TokenError("critical header extensions are not supported")
    key = ks.get(kid, alg)
    try:
        claims = jwt.decode(
            token, key.key, algorithms=[alg], audience=s.jwt_audience, issuer=s.jwt_issuer,
            # Time claims are checked below, all in one place and with one leeway.
            options={"verify_exp": False, "verify_nbf": False, "require_aud": True, "require_iss": True,
                     "require_sub": True, "verify_at_hash": False},
        )
    except (JOSEError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise TokenError(f"refused by verifier: {type(e).__name__}") from None
    # Belt and braces: the library checks these, but a missing claim must never pass.
    aud = claims.get("aud")
    aud_ok = aud == s.jwt_audience or (isinstance(aud, list) and s.jwt_audience in aud)
    if claims.get("iss") != s.jwt_issuer or not aud_ok:
        raise TokenError("issuer or audience")
    _check_times(claims, now=wall_clock(), max_lifetime=s.jwt_max_lifetime_seconds)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise TokenError("bad sub")
    scope = claims.get("scope", claims.get("scp"))
    if scope is None:
        scopes: tuple[str, ...] = ()
    elif isinstance(scope, str):
        scopes = tuple(scope.split())
    elif isinstance(scope, list) and all(isinstance(x, str) for x in scope):
        scopes = tuple(scope)
    else:
        raise TokenError("bad scope")
    act_for = claims.get("act_for")
    if act_for is not None and (not isinstance(act_for, str) or not act_for or len(act_for) > 120):
        raise TokenError("bad act_for")
    return TokenClaims(subject=sub, scopes=tuple(dict.fromkeys(scopes)), acting_for=act_for, raw=claims)


async def verify_async(token: str, *, keys: KeySet | None = None) -> TokenClaims:
    """`verify` for the event loop: a JWKS download (rare) runs in a thread, never on the loop."""
    ks = keys or keyset()
    if ks.remote:
        kid = None
        try:
            kid = _peek_header(token).get("kid")
        except TokenError:
            pass
        if isinstance(kid, str | None) and ks.needs_fetch(kid):
            await asyncio.to_thread(ks.refresh, kid)
    return verify(token, keys=ks)


# ---------------------------------------------------------------------------------------------------- dev tokens
_signing_keys: dict[str, tuple[str, Any]] = {}


def _dev_signing_key(settings: Settings) -> tuple[str, Any]:
    path = str(settings.jwt_private_key_file or ensure_dev_keys(settings)[0])
    hit = _signing_keys.get(path)
    if hit is None:
        pem = Path(path).read_bytes()
        private = serialization.load_pem_private_key(pem, password=None)
        alg = _alg_for_public_key(private.public_key())
        hit = (alg, jwk.construct(pem.decode(), alg))  # parsing a PEM costs ~40 ms: once per process
        _signing_keys[path] = hit
    return hit


def issue_dev_token(subject: str, *, scopes: list[str] | None = None, acting_for: str | None = None,
                    minutes: int | None = None, not_before: datetime | None = None,
                    extra: dict[str, Any] | None = None) -> str:
    """Signs a token with the local development key. Production tokens come from the identity provider."""
    s = get_settings()
    lifetime = timedelta(minutes=minutes or s.dev_token_minutes)
    if lifetime.total_seconds() > s.jwt_max_lifetime_seconds:
        raise ValueError(f"durata del token oltre JWT_MAX_LIFETIME_SECONDS ({s.jwt_max_lifetime_seconds} s)")
    alg, key = _dev_signing_key(s)
    now = datetime.fromtimestamp(int(wall_clock()), tz=UTC)  # real time, like `verify`
    claims: dict[str, Any] = {
        "iss": s.jwt_issuer, "aud": s.jwt_audience, "sub": subject, "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()), "nbf": int((not_before or now).timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    if acting_for:
        claims["act_for"] = acting_for
    claims.update(extra or {})
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": DEV_KID})
