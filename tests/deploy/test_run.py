"""`python -m deploy.run` end to end: embedded Postgres, migrations, seed, worker, beat and API as real processes,
ready over real HTTP, stopped by SIGINT with nothing left behind; a second run on the same data dir seeds nothing.
It turns DEV_MODE on by itself, listens on 127.0.0.1 unless HOST says otherwise, and its output never shows a URL's
query string (uvicorn's access log is off; the API logs the route template)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from integrations.postgres.devpg import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRUB = ("DATABASE_URL", "MIGRATION_DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "PUA_FIXED_NOW",
         "PUA_EXTRA_HANDLER_MODULES", "HOST", "PORT", "PG_DATA_DIR", "PG_PORT", "DEV_MODE")
CF = "BNZTRS40A41D142X"


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a listening TCP socket on `port` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add("127.0.0.1" if addr == "0100007F" else addr)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def inserted(counts: dict) -> int:
    """Rows a loader reports as inserted, whatever the shape of its counts."""
    if "total_inserted" in counts:
        return int(counts["total_inserted"])
    if "inserted" in counts:
        value = counts["inserted"]
        return sum(int(v) for v in value.values()) if isinstance(value, dict) else int(value)
    return sum(int(v) for v in counts.values() if isinstance(v, int) and not isinstance(v, bool))


async def _run_once(tmp: Path, pg_port: int, label: str) -> dict:
    """Start deploy.run, wait for /health/ready = 200, SIGINT it, check every process is gone. Returns the seed
    counts it printed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    # No HOST: the default must be this machine only. No DEV_MODE: deploy.run turns it on by itself.
    env.update(PG_DATA_DIR=str(tmp / "pg"), PG_PORT=str(pg_port), PORT=str(port),
               DEV_KEYS_DIR=str(tmp / "keys"), PYTHONUNBUFFERED="1", LOG_LEVEL="INFO")
    log = tmp / f"run-{label}.log"
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def text() -> str:
        return log.read_text(errors="replace")

    try:
        await _wait_ready(proc, port, log)

        assert _listening_addresses(port) == {"127.0.0.1"}
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://127.0.0.1:{port}/api/persons?codice_fiscale={CF}")
        assert r.status_code == 401

        output = text()
        children = {name: int(pid) for name, pid in re.findall(r"started (\w+) pid=(\d+)", output)}
        assert set(children) == {"worker", "beat", "api"}
        pg_pid = int((tmp / "pg" / "postmaster.pid").read_text().splitlines()[0])
        assert all(_alive(p) for p in [*children.values(), pg_pid])

        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0, text()[-4000:]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in [*children.values(), pg_pid]):
            await asyncio.sleep(0.2)
        left = {n: p for n, p in {**children, "postgres": pg_pid}.items() if _alive(p)}
        assert left == {}, f"still running after Ctrl-C: {left}"
        assert not (tmp / "pg" / "postmaster.pid").exists()
        output = text()
        assert "postgres stopped" in output
        assert CF not in output and "codice_fiscale=" not in output  # no access log with raw URLs
        assert '"route": "/api/persons", "status": 401' in output  # the API's own request line instead
        seeds = {kind: json.loads(body) for kind, body in re.findall(r"seed (reference|demo): (\{.*\})", output)}
        assert set(seeds) == {"reference", "demo"}, output[-4000:]
        return seeds
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        out.close()
        from integrations.postgres import devpg

        if (tmp / "pg" / "postmaster.pid").exists():
            devpg.stop(tmp / "pg", mode="immediate")


async def test_make_run_starts_everything_and_ctrl_c_stops_it_all_twice_without_reseeding():
    # Under /var/tmp: the Postgres server user must be able to traverse every parent of its data dir.
    tmp = Path(tempfile.mkdtemp(prefix="pua-run-", dir="/var/tmp"))
    try:
        pg_port = free_port()
        first = await _run_once(tmp, pg_port, "first")
        assert inserted(first["reference"]) > 0
        assert inserted(first["demo"]) > 0

        second = await _run_once(tmp, pg_port, "second")  # same data dir: server restarts, the seed is idempotent
        assert inserted(second["reference"]) == 0, second
        assert inserted(second["demo"]) == 0, second
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _wait_ready(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    status = None
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"deploy.run exited early ({proc.returncode}):\n{log.read_text()[-4000:]}"
            try:
                status = (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code
                if status == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"not ready in time (last status {status}):\n{log.read_text()[-4000:]}")
