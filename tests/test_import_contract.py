"""The import contract of domain/ (domain/contexts.toml): the tree passes it, and the checker catches what the
contract forbids (a test of the test, on a copy of the tree)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.architecture.contract import check, table_classes

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]


def test_the_tree_keeps_the_contract():
    assert check(ROOT) == []


@pytest.fixture
def tree(tmp_path) -> Path:
    shutil.copytree(ROOT / "domain", tmp_path / "domain", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_the_copy_passes_before_it_is_changed(tree):
    assert check(tree) == []


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("kernel/clock.py", "from domain.registry import persons", "context 'kernel' may not import 'registry'"),
    ("assessment/states.py", "from domain.pua.models import AccessState", "context 'assessment' may not import 'pua'"),
    ("registry/queries.py", "from domain.care_plan import queries", "context 'registry' may not import 'care_plan'"),
    ("pua/service.py", "from domain.security.models import Team", "reads the tables Team of 'security' directly"),
    ("pua/service.py", "from integrations.storage.files import FileStore", "domain imports the outer layer"),
    ("care_plan/states.py", "def f():\n    from domain.registry import persons\n    return persons",
     "import inside a function without a comment"),
    ("diary/models.py", "x = __import__('domain.registry.cartelle')", "__import__ hides an import"),
])
def test_a_forbidden_import_is_caught(tree, module, line, expected):
    _append(tree / "domain" / module, line)
    problems = check(tree)
    assert any(expected in p for p in problems), problems


def test_an_undeclared_context_is_caught(tree):
    (tree / "domain" / "benefits").mkdir()
    (tree / "domain" / "benefits" / "service.py").write_text("from domain.kernel import clock\n")
    assert any("context 'benefits' is not declared" in p for p in check(tree))


def test_enums_of_another_context_are_not_tables(tree):
    # Importing a value type (an enum) of an allowed context is fine; its tables are not.
    _append(tree / "domain" / "pua" / "service.py", "from domain.security.models import TeamType")
    assert check(tree) == []
    assert "Team" in table_classes(tree)["security"] and "TeamType" not in table_classes(tree)["security"]
