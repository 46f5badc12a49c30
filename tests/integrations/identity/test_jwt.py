"""Token verification: every way a token can be wrong is refused, a JWKS is fetched once and rotated."""
from __future__ import annotations

import json
import time

import pytest

from domain.kernel.settings import Settings, get_settings
from integrations.identity import jwt as idjwt
from integrations.identity.jwt import DEV_KID, KeySet, TokenError, issue_dev_token, verify, verify_async
from tests.integrations.identity.keys import (
    FakeTimer,
    JwksServer,
    SigningKey,
    claims,
    dev_signed,
    hs256_token,
    ts,
    unsigned_token,
)


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return SigningKey("RS256")


@pytest.fixture(scope="module")
def es_key() -> SigningKey:
    return SigningKey("ES256")


def _ts(minutes: float) -> int:
    return ts(minutes)


# ------------------------------------------------------------------ local development key (the default key set)
async def test_dev_token_verifies_with_local_key():
    token = issue_dev_token("0190f0a0-0000-7000-8000-000000000001")
    c = verify(token)
    assert c.subject == "0190f0a0-0000-7000-8000-000000000001"
    assert c.scopes == () and c.acting_for is None
    assert idjwt.keyset().kids == {DEV_KID}


async def test_dev_token_carries_scopes_and_act_for_only_when_asked():
    c = verify(issue_dev_token("sub-1", scopes=["fhir.read", "fhir.write", "fhir.read"], acting_for="ifec.pua"))
    assert c.scopes == ("fhir.read", "fhir.write")
    assert c.acting_for == "ifec.pua"
    assert set(c.raw) == {"iss", "aud", "sub", "jti", "iat", "nbf", "exp", "scope", "act_for"}


@pytest.mark.parametrize("case", [
    "expired", "not_yet_valid", "wrong_audience", "wrong_issuer", "no_audience", "no_issuer", "no_exp", "no_sub",
    "exp_not_a_number", "sub_not_a_string", "bad_scope", "bad_act_for",
])
async def test_bad_claims_are_refused(case):
    over = {
        "expired": {"exp": _ts(-5)}, "not_yet_valid": {"nbf": _ts(5)}, "wrong_audience": {"aud": "another-api"},
        "wrong_issuer": {"iss": "https://evil.example/auth"}, "no_audience": {"aud": None},
        "no_issuer": {"iss": None}, "no_exp": {"exp": None}, "no_sub": {"sub": None},
        "exp_not_a_number": {"exp": "tomorrow"}, "sub_not_a_string": {"sub": 42},
        "bad_scope": {"scope": {"a": 1}}, "bad_act_for": {"act_for": ["x"]},
    }[case]
    token = dev_signed(claims(**over))
    with pytest.raises(TokenError):
        verify(token)


async def test_the_same_token_is_accepted_with_good_claims():
    assert verify(dev_signed(claims())).subject == claims()["sub"]
    # Audience given as a list that contains ours.
    assert verify(dev_signed(claims(aud=["other", get_settings().jwt_audience]))).subject


async def test_token_times_follow_the_wall_clock_not_the_frozen_business_clock(clock):
    # The autouse fixture froze business time on 2026-03-02: moving it must not change what a token is worth.
    token = issue_dev_token("sub-1", minutes=10)
    claims_ = verify(token).raw
    assert abs(claims_["iat"] - time.time()) < 5  # issued on the real clock too
    clock.advance(days=3650)
    assert verify(token).subject == "sub-1"
    clock.advance(days=-7300)
    assert verify(token).subject == "sub-1"
    # Valid at the business time, expired in reality: refused.
    business_now = int(clock.now().timestamp())
    with pytest.raises(TokenError, match="expired"):
        verify(dev_signed(claims(iat=business_now - 60, nbf=business_now - 60, exp=business_now + 600)))


async def test_iat_in_the_future_is_refused_beyond_the_skew():
    assert verify(dev_signed(claims(iat=_ts(0.25)))).subject  # 15 s ahead: clock skew
    with pytest.raises(TokenError, match="future"):
        verify(dev_signed(claims(iat=_ts(5), nbf=_ts(0), exp=_ts(10))))
    # A far-future iat would also have made the lifetime check measure from tomorrow.
    with pytest.raises(TokenError, match="future"):
        verify(dev_signed(claims(iat=_ts(24 * 60), exp=_ts(24 * 60 + 10))))


async def test_tokens_longer_than_the_maximum_lifetime_are_refused():
    max_minutes = get_settings().jwt_max_lifetime_seconds / 60
    assert max_minutes == 12 * 60
    assert verify(dev_signed(claims(exp=_ts(max_minutes)))).subject  # exactly the maximum
    for over in ({"exp": _ts(max_minutes + 5)},  # from iat = now
                 {"iat": None, "exp": _ts(max_minutes + 5)},  # no iat: measured from now
                 {"iat": _ts(-60), "nbf": _ts(-60), "exp": _ts(max_minutes)},  # issued an hour ago, 13 h of life
                 {"exp": 4102444800}):  # 2100-01-01: "never expires"
        with pytest.raises(TokenError, match="lifetime"):
            verify(dev_signed(claims(**over)))


async def test_iat_must_be_a_number():
    with pytest.raises(TokenError):
        verify(dev_signed(claims(iat="now")))


async def test_dev_tokens_cannot_outlive_the_maximum_lifetime():
    with pytest.raises(ValueError, match="JWT_MAX_LIFETIME_SECONDS"):
        issue_dev_token("sub-1", minutes=13 * 60)
    assert verify(issue_dev_token("sub-1", minutes=12 * 60)).subject == "sub-1"


# ------------------------------------------------------------------ development keys only in development mode
async def test_without_configured_keys_the_verifier_refuses_to_start_outside_dev_mode(tmp_path, es_key):
    assert get_settings().dev_mode  # tests run in development mode (tests/conftest.py)
    with pytest.raises(idjwt.InsecureConfiguration, match="JWKS_URL o JWT_PUBLIC_KEY_FILE"):
        idjwt.require_production_keys(Settings(dev_mode=False, jwks_url=None, jwt_public_key_file=None))
    with pytest.raises(idjwt.InsecureConfiguration):
        KeySet(Settings(dev_mode=False, jwks_url=None, jwt_public_key_file=None, dev_keys_dir=tmp_path))
    assert not (tmp_path / "dev-private.pem").exists()  # no development key was made either
    # With a real key source it starts; in development mode the dev key is fine.
    path = tmp_path / "es.pem"
    path.write_text(es_key.public_pem)
    assert KeySet(Settings(dev_mode=False, jwt_public_key_file=path)).kids == {DEV_KID}
    idjwt.require_production_keys(Settings(dev_mode=False, jwks_url="https://idp.example.org/certs"))
    assert KeySet(Settings(dev_mode=True, dev_keys_dir=tmp_path)).kids == {DEV_KID}


async def test_small_clock_skew_is_tolerated_but_not_more():
    assert verify(dev_signed(claims(nbf=_ts(0.25)))).subject  # 15 s in the future
    with pytest.raises(TokenError):
        verify(dev_signed(claims(nbf=_ts(2))))


async def test_alg_none_is_refused():
    for alg in ("none", "None", "NONE"):
        with pytest.raises(TokenError, match="algorithm"):
            verify(unsigned_token(claims(), {"alg": alg, "typ": "JWT", "kid": DEV_KID}))


async def test_hs256_signed_with_the_public_key_is_refused():
    public_pem = idjwt.ensure_dev_keys()[1].read_bytes()
    for kid in (DEV_KID, None):
        with pytest.raises(TokenError, match="algorithm"):
            verify(hs256_token(claims(), public_pem, kid=kid))


async def test_unknown_kid_is_refused():
    with pytest.raises(TokenError, match="unknown kid"):
        verify(dev_signed(claims(), {"kid": "someone-else"}))


async def test_token_signed_by_another_key_with_our_kid_is_refused(rs_key):
    with pytest.raises(TokenError):
        verify(rs_key.sign(claims(), headers={"kid": DEV_KID}))


@pytest.mark.parametrize("garbage", [
    "", "garbage", "a.b", "a.b.c", "x" * 9000, "eyJhbGciOiJSUzI1NiJ9.e30.", "W10.e30.", "bnVsbA.e30.",
    "eyJhbGciOlsiUlMyNTYiXX0.e30.", "\u00e8\u00e9.\u00e0.\u00f2",
])
async def test_garbage_is_refused(garbage):
    with pytest.raises(TokenError):
        verify(garbage)


async def test_crit_header_and_mismatched_alg_are_refused(es_key):
    with pytest.raises(TokenError, match="critical"):
        verify(dev_signed(claims(), {"crit": ["exp"]}))
    # An ES256 token pointing at the RSA dev key.
    with pytest.raises(TokenError):
        verify(es_key.sign(claims(), headers={"kid": DEV_KID}))


async def test_only_asymmetric_algorithms_can_be_configured():
    with pytest.raises(ValueError):
        KeySet(Settings(jwt_algorithms=["RS256", "HS256"]))
    with pytest.raises(ValueError):
        KeySet(Settings(jwks_url="file:///etc/passwd"))


# ------------------------------------------------------------------ local key files
async def test_local_ec_public_key_file(tmp_path, es_key):
    path = tmp_path / "es.pem"
    path.write_text(es_key.public_pem)
    ks = KeySet(Settings(jwt_public_key_file=path))
    token = es_key.sign(claims(), headers={"kid": DEV_KID})
    assert verify(token, keys=ks).subject == claims()["sub"]
    # No kid at all: the only key is used.
    no_kid = idjwt.jwt.encode(claims(), es_key.private_pem, algorithm="ES256")
    assert verify(no_kid, keys=ks).subject


async def test_local_jwks_file_with_two_keys(tmp_path, rs_key, es_key):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rs_key.public_jwk(), es_key.public_jwk(with_alg=False),
                                         {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"}]}))
    ks = KeySet(Settings(jwt_public_key_file=path))
    assert ks.kids == {rs_key.kid, es_key.kid}  # the symmetric key is never loaded
    assert verify(rs_key.sign(claims()), keys=ks).subject
    assert verify(es_key.sign(claims()), keys=ks).subject
    with pytest.raises(TokenError, match="kid"):
        verify(idjwt.jwt.encode(claims(), es_key.private_pem, algorithm="ES256"), keys=ks)  # two keys, no kid
    with pytest.raises(TokenError, match="algorithm"):
        verify(hs256_token(claims(), b"secret", kid="hmac"), keys=ks)


# ------------------------------------------------------------------ JWKS over HTTP
async def test_jwks_rs256_and_es256_fetched_once_and_cached(rs_key, es_key):
    with JwksServer(rs_key, es_key) as server:
        timer = FakeTimer()
        ks = KeySet(Settings(jwks_url=server.url, jwks_cache_seconds=300), timer=timer)
        assert server.requests == 0  # nothing fetched before the first token
        assert verify(rs_key.sign(claims(sub="a")), keys=ks).subject == "a"
        assert server.requests == 1
        assert verify(es_key.sign(claims(sub="b")), keys=ks).subject == "b"
        assert verify(rs_key.sign(claims(sub="c")), keys=ks).subject == "c"
        assert server.requests == 1  # cached
        timer.advance(301)
        assert verify(es_key.sign(claims(sub="d")), keys=ks).subject == "d"
        assert server.requests == 2  # cache expired: refetched once


async def test_jwks_key_rotation_picks_up_a_new_kid(rs_key):
    new_key = SigningKey("ES256")
    with JwksServer(rs_key) as server:
        timer = FakeTimer()
        ks = KeySet(Settings(jwks_url=server.url, jwks_cache_seconds=300), timer=timer, min_refetch_seconds=10)
        assert verify(rs_key.sign(claims()), keys=ks)
        server.set_keys(new_key)  # the identity provider rotates
        token = new_key.sign(claims(sub="rotated"))
        # Within the anti-hammering window an unknown kid does not refetch...
        with pytest.raises(TokenError, match="unknown kid"):
            verify(token, keys=ks)
        assert server.requests == 1
        timer.advance(11)
        # ...afterwards it does, once, and the old key is gone.
        assert verify(token, keys=ks).subject == "rotated"
        assert server.requests == 2
        assert ks.kids == {new_key.kid}
        with pytest.raises(TokenError, match="unknown kid"):
            verify(rs_key.sign(claims()), keys=ks)
        # Random kids cannot make it hammer the provider.
        for i in range(5):
            with pytest.raises(TokenError):
                verify(rs_key.sign(claims(), headers={"kid": f"random-{i}"}), keys=ks)
        assert server.requests == 2


async def test_jwks_outage_keeps_known_keys(rs_key):
    with JwksServer(rs_key) as server:
        timer = FakeTimer()
        ks = KeySet(Settings(jwks_url=server.url, jwks_cache_seconds=60), timer=timer)
        assert verify(rs_key.sign(claims()), keys=ks)
        server.fail = True
        timer.advance(61)
        assert verify(rs_key.sign(claims()), keys=ks)  # stale keys still verify
        assert server.requests == 2
        assert verify(rs_key.sign(claims()), keys=ks)
        assert server.requests == 2  # backs off after a failure


async def test_jwks_unreachable_refuses_without_crashing(rs_key):
    with JwksServer(rs_key) as server:
        url = server.url
    ks = KeySet(Settings(jwks_url=url), fetch_timeout=1)
    with pytest.raises(TokenError, match="kid"):
        verify(rs_key.sign(claims()), keys=ks)


async def test_verify_async_fetches_in_a_thread(es_key):
    with JwksServer(es_key) as server:
        ks = KeySet(Settings(jwks_url=server.url))
        c = await verify_async(es_key.sign(claims(sub="async")), keys=ks)
        assert c.subject == "async" and server.requests == 1
        c = await verify_async(es_key.sign(claims(sub="again")), keys=ks)
        assert c.subject == "again" and server.requests == 1
        with pytest.raises(TokenError):
            await verify_async("garbage", keys=ks)
