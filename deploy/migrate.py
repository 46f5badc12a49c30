"""`python -m api migrate`: alembic upgrade head as the owner role."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def upgrade(url: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "deploy" / "alembic.ini"))
    if url:
        cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def main(argv: list[str]) -> int:
    upgrade()
    print("migrations: at head")
    return 0
