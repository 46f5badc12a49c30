"""Comandi di gestione: `python -m api <comando> [opzioni]` (`python -m api <comando> --help` per le opzioni).

Senza DATABASE_URL né MIGRATION_DATABASE_URL i comandi usano il Postgres integrato di `make run`
(127.0.0.1:PG_PORT, database `pua`), quindi funzionano accanto a un `make run` in esecuzione senza altro da
impostare. I comandi che cambiano lo schema o caricano dati (migrate, load-reference, seed-demo, seed) usano da
soli il ruolo proprietario: MIGRATION_DATABASE_URL, altrimenti DATABASE_URL, altrimenti `pua_owner` sul Postgres
integrato.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<16}{cmd.help}" for name, cmd in COMMANDS.items())
    p = argparse.ArgumentParser(prog="python -m api", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"comandi:\n{listing}")
    p.add_argument("command", metavar="COMANDO", choices=list(COMMANDS), help="uno dei comandi elencati sotto")
    p.add_argument("args", metavar="...", nargs=argparse.REMAINDER, help="opzioni del comando")
    return p


def owner_database_url() -> str:
    """The owner role's URL, as deploy/migrate.py resolves it (MIGRATION_DATABASE_URL, else DATABASE_URL), and
    with neither set the owner of the embedded server of `make run` (never the application role, which may not
    change the schema)."""
    from domain.kernel.settings import get_settings

    settings = get_settings()
    if settings.migration_database_url:
        return settings.migration_database_url
    if "database_url" in settings.model_fields_set:  # set in the environment or in .env
        return settings.database_url
    from integrations.postgres import devpg

    return devpg.urls(settings.pg_port, EMBEDDED_DB, EMBEDDED_OWNER, settings.app_db_role)["MIGRATION_DATABASE_URL"]


def _point_settings_at(command: Command) -> None:
    """What the commands read from the settings: the owner role as resolved above for those that change the schema
    or load data; without DATABASE_URL, the application role of the embedded server on PG_PORT (the settings'
    default names the default port only). Set on the settings object itself, so whatever else was set stays."""
    from domain.kernel.settings import get_settings

    settings = get_settings()
    if command.owner:
        owner = owner_database_url()
        if settings.migration_database_url != owner:
            settings.migration_database_url = owner
    elif "database_url" not in settings.model_fields_set:
        from integrations.postgres import devpg

        settings.database_url = devpg.urls(settings.pg_port, EMBEDDED_DB, EMBEDDED_OWNER,
                                           settings.app_db_role)["DATABASE_URL"]


def migrate(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m api migrate",
                            description="Porta lo schema del database all'ultima migrazione (alembic upgrade "
                                        "head) con il ruolo proprietario: MIGRATION_DATABASE_URL, altrimenti "
                                        "DATABASE_URL, altrimenti pua_owner sul Postgres integrato di `make run`."
                            ).parse_args(argv)
    from deploy.migrate import upgrade

    upgrade(owner_database_url())
    print("migrazioni: schema all'ultima versione")
    return 0


def read_business_clock() -> None:
    """Commands that write records stamp them with business time: take the stored clock first (a demo Ambito whose
    clock was moved, deploy/demo_clock.py). Never fails the command (an unmigrated database keeps the real time)."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from domain.kernel import business_clock
    from domain.kernel.settings import get_settings

    async def _read() -> None:
        engine = create_async_engine(get_settings().database_url, poolclass=NullPool)
        try:
            await business_clock.refresh(engine)
        finally:
            await engine.dispose()

    asyncio.run(_read())


@dataclass(frozen=True)
class Command:
    target: str | Callable[[list[str]], int]  # "module:function" or a function, given the remaining arguments
    help: str
    owner: bool  # changes the schema or loads data: runs as the owner role


COMMANDS: dict[str, Command] = {
    "migrate": Command(migrate, "porta lo schema all'ultima migrazione (alembic upgrade head)", True),
    "load-reference": Command("domain.territory.reference:main", "territorio, organizzazioni, catalogo e unità "
                              "d'offerta di un Ambito (idempotente)", True),
    "seed-demo": Command("deploy.run:seed_demo_command", "utenti, équipe e persone dimostrative (idempotente; "
                         "solo con DEV_MODE=true)", True),
    "seed": Command("deploy.seed.synthetic:main", "Ambito sintetico per le prove di carico: --persons N", True),
    "import": Command("deploy.import_cli:main", "importa persone e cartelle da un'esportazione (CSV/XLSX): FILE "
                      "--mapping M --as STEWARD [--dry-run]", False),
    "token": Command("integrations.identity.dev_tokens:main", "token di sviluppo per un utente: --user USERNAME",
                     False),
    "clock": Command("deploy.demo_clock:main", "orologio di prova (solo in sviluppo): show | set ISTANTE | "
                     "advance DURATA | reset", False),
    "run": Command("deploy.run:main", "tutto quello che fa `make run` (Postgres, migrazioni, dati, worker, API)",
                   False),
}
# The embedded server of `make run` (deploy/run.py): database and owner role.
EMBEDDED_DB, EMBEDDED_OWNER = "pua", "pua_owner"


def main(argv: list[str]) -> int:
    parser = _parser()
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv)  # --help prints and exits 0; anything else is a usage error (exit 2)
        return 2
    if argv[0] not in COMMANDS:
        parser.print_usage(sys.stderr)
        print(f"python -m api: comando sconosciuto '{argv[0]}' (comandi: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    command = COMMANDS[name]
    if name != "run":  # `run` decides by itself whether to start the embedded server (DATABASE_URL unset)
        _point_settings_at(command)
    asks_help = any(a in ("-h", "--help") for a in rest)
    if name in ("load-reference", "seed-demo", "seed", "import") and not asks_help:
        read_business_clock()
    if name == "seed-demo" and not asks_help and not any(a.startswith("--database-url") for a in rest):
        rest = [*rest, "--database-url", owner_database_url()]  # seed-demo alone would use DATABASE_URL
    if callable(command.target):
        return command.target(rest) or 0
    module, func = command.target.split(":")
    return getattr(importlib.import_module(module), func)(rest) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
