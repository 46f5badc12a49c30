"""`python -m api token --user USERNAME ...`: a development token for a user of the database."""
from __future__ import annotations

import asyncio
import contextlib
import io

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from api.__main__ import main as api_main
from deploy.seed import demo
from integrations.identity import dev_tokens as tokens
from integrations.identity.jwt import verify


async def _run(fn, argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = await asyncio.to_thread(fn, argv)
    return rc, out.getvalue().strip(), err.getvalue().strip()


async def test_token_command(fresh_db):
    db = ["--database-url", fresh_db["DATABASE_URL"]]
    assert (await _run(demo.main, db))[0] == 0
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    async with engine.connect() as c:
        ids = dict((await c.execute(sa.text(
            "select username, id from app_user where username in ('as.offanengo', 'asst-gateway')"))).all())
    await engine.dispose()

    rc, out, _ = await _run(api_main, ["token", "--user", "as.offanengo", *db])  # through the dispatcher
    assert rc == 0
    c = verify(out)
    assert c.subject == str(ids["as.offanengo"]) and c.scopes == () and c.acting_for is None
    assert set(c.raw) == {"iss", "aud", "sub", "jti", "iat", "nbf", "exp"}  # only the subject identifies

    rc, out, _ = await _run(tokens.main, ["--user", "as.offanengo", "--minutes", "5", *db])
    c = verify(out)
    assert rc == 0 and c.raw["exp"] - c.raw["iat"] == 300

    rc, out, _ = await _run(tokens.main, ["--user", "asst-gateway", "--scopes", "fhir.read", "--act-for", "ifec.pua",
                                          *db])
    c = verify(out)
    assert rc == 0 and c.subject == str(ids["asst-gateway"])
    assert c.scopes == ("fhir.read",) and c.acting_for == "ifec.pua"

    for argv, message in [
        (["--user", "nobody"], "inesistente"),
        (["--user", "asst-gateway", "--scopes", "admin.all"], "scope non concessi"),
        (["--user", "asst-gateway", "--act-for", "nobody"], "--act-for"),
        (["--user", "as.offanengo", "--scopes", "fhir.read"], "solo per i client di sistema"),
        (["--user", "as.offanengo", "--act-for", "ifec.pua"], "solo per i client di sistema"),
        (["--user", "as.offanengo", "--minutes", "100000"], "JWT_MAX_LIFETIME_SECONDS"),  # was a traceback
    ]:
        rc, out, err = await _run(tokens.main, [*argv, *db])
        assert rc == 1 and out == "" and message in err, argv
