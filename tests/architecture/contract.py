"""The import contract of domain/, checked on source text (an AST walk): nothing is imported or run.

`check(root)` returns the violations of the tree at `root` against `root/domain/contexts.toml`; the test of the
contract runs it on this checkout and on a copy with a forbidden import added."""
from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

OUTER_LAYERS = ("api", "integrations", "workers", "deploy")


@dataclass(frozen=True)
class Contract:
    edges: dict[str, frozenset[str]]
    aggregators: frozenset[str]

    @classmethod
    def load(cls, root: Path) -> Contract:
        data = tomllib.loads((root / "domain" / "contexts.toml").read_text())
        return cls({k: frozenset(v) for k, v in data["contexts"].items()},
                   frozenset(data.get("aggregators", {}).get("modules", [])))


def _imported(node: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names) pairs of an import statement; relative imports are not used in this project."""
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return [("." * node.level + (node.module or ""), [a.name for a in node.names])]
        return [(node.module or "", [a.name for a in node.names])]
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names]
    return []


def table_classes(root: Path) -> dict[str, set[str]]:
    """context -> names of the SQLModel tables its models.py defines (`class X(SQLModel, table=True)`)."""
    out: dict[str, set[str]] = {}
    for path in sorted((root / "domain").glob("*/models.py")):
        tree = ast.parse(path.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.ClassDef)
                 and any(k.arg == "table" and getattr(k.value, "value", False) is True for k in n.keywords)}
        out[path.parent.name] = names
    return out


def _context_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "domain" else None


def _function_level(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    ids.add(id(node))
    return ids


def check(root: Path) -> list[str]:
    contract = Contract.load(root)
    tables = table_classes(root)
    problems: list[str] = []
    for path in sorted((root / "domain").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        src = path.read_text()
        lines = src.split("\n")
        tree = ast.parse(src)
        parts = path.relative_to(root / "domain").parts
        ctx = parts[0] if len(parts) > 1 else None
        if ctx is not None and ctx not in contract.edges:
            problems.append(f"{rel}: context '{ctx}' is not declared in domain/contexts.toml")
            continue
        inner = _function_level(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
                problems.append(f"{rel}:{node.lineno}: __import__ hides an import")
            for module, names in _imported(node):
                top = module.split(".")[0]
                if top in OUTER_LAYERS:
                    problems.append(f"{rel}:{node.lineno}: domain imports the outer layer '{module}'")
                    continue
                if module.startswith("."):
                    problems.append(f"{rel}:{node.lineno}: relative import '{module}'")
                    continue
                if top == "domain" and id(node) in inner and "#" not in lines[node.lineno - 1]:
                    problems.append(f"{rel}:{node.lineno}: import inside a function without a comment giving its "
                                    f"reason ('{module}')")
                target = _context_of(module)
                if module == "domain" and names:  # from domain import registry
                    targets = [n for n in names if n in contract.edges]
                else:
                    targets = [target] if target else []
                if ctx is None:
                    if rel not in contract.aggregators and any(targets):
                        problems.append(f"{rel}:{node.lineno}: a module at the top of domain/ imports '{module}'")
                    continue
                for t in targets:
                    if t == ctx:
                        continue
                    if t not in contract.edges:
                        problems.append(f"{rel}:{node.lineno}: imports '{module}' of the undeclared context '{t}'")
                    elif t not in contract.edges[ctx]:
                        problems.append(f"{rel}:{node.lineno}: context '{ctx}' may not import '{t}' ('{module}')")
                    elif module == f"domain.{t}.models":
                        owned = sorted(set(names) & tables.get(t, set()))
                        if owned:
                            problems.append(f"{rel}:{node.lineno}: reads the tables {', '.join(owned)} of '{t}' "
                                            f"directly: use the readers '{t}' exports")
    return problems
