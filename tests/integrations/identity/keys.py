"""Test helpers: signing keys, hand-made tokens and a real JWKS server on 127.0.0.1 (http.server in a thread)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt

from domain.kernel.settings import get_settings


class SigningKey:
    def __init__(self, alg: str, kid: str | None = None):
        self.alg = alg
        self.kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        if alg.startswith("RS"):
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
        self.private_pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()).decode()
        self.public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def public_jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        d = jwk.construct(self.public_pem, self.alg).to_dict()
        d = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in d.items()}
        d["kid"] = self.kid
        d["use"] = "sig"
        if not with_alg:
            d.pop("alg", None)
        return d

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        h = {"kid": self.kid}
        h.update(headers or {})
        return jwt.encode(claims, self.private_pem, algorithm=self.alg, headers=h)


def ts(minutes: float = 0) -> int:
    """A token time `minutes` from now, on the wall clock that token checks use (not the frozen business clock)."""
    return int(time.time() + minutes * 60)


def claims(sub: str = "00000000-0000-7000-8000-000000000001", **over: Any) -> dict[str, Any]:
    s = get_settings()
    c = {"iss": s.jwt_issuer, "aud": s.jwt_audience, "sub": sub, "iat": ts(), "nbf": ts(), "exp": ts(10)}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A token with an arbitrary header and no (or an empty) signature: `alg: none` and friends."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def hs256_token(payload: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """The classic confusion attack: HS256 with the server's *public* key as the HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


class JwksServer:
    """Serves `self.doc` at /jwks.json and counts requests."""

    def __init__(self, *keys: SigningKey):
        self.doc: dict[str, Any] = {"keys": [k.public_jwk() for k in keys]}
        self.requests = 0
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.fail or self.path != "/jwks.json":
                    self.send_response(503 if outer.fail else 404)
                    self.end_headers()
                    return
                body = json.dumps(outer.doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def set_keys(self, *keys: SigningKey) -> None:
        self.doc = {"keys": [k.public_jwk() for k in keys]}

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class FakeTimer:
    def __init__(self, start: float = 1000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def dev_signed(payload: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """Signed with the service's own development key, with arbitrary claims and header."""
    from integrations.identity import jwt as idjwt

    alg, key = idjwt._dev_signing_key(get_settings())
    h = {"kid": idjwt.DEV_KID}
    h.update(headers or {})
    return jwt.encode(payload, key, algorithm=alg, headers=h)
