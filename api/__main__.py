"""Management commands: `python -m api <command> [options]`.

  migrate          alembic upgrade head (owner role)
  load-reference   territory, organisations, catalogue, UDO of an Ambito (idempotent)
  seed-demo        demo users, teams and a few persons (idempotent)
  seed             synthetic Ambito: --persons N
  token            a development token: --user USERNAME
  run              everything `make run` does
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "migrate": "deploy.migrate:main",
    "load-reference": "domain.territory.reference:main",
    "seed-demo": "deploy.run:seed_demo_command",  # refused outside DEV_MODE
    "seed": "deploy.seed.synthetic:main",
    "token": "domain.security.tokens:main",
    "run": "deploy.run:main",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    module, func = COMMANDS[argv[0]].split(":")
    return getattr(importlib.import_module(module), func)(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
