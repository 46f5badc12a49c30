"""Small cells: for callers who see aggregates only, a count from 1 to 4 is shown as "<5" (primary suppression), and
more cells are hidden (complementary suppression, shown as "n.d.") until no hidden count can be worked out from
what is shown: neither from a total and the other cells of its row or column (one equation), nor from the
equations together (linear algebra over the whole table: Ambito = Σ sub-ambiti = Σ aree, sub-ambito = Σ comuni),
nor from the bounds a reader knows ("<5" is 1-4, "n.d." is at least 5, counts are never negative).

One table per measure (numerator or denominator of one indicator), over every grouping at once, so the views
(by sub-ambito, by comune, by area) agree with each other: a cell hidden in one is hidden in all."""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from fractions import Fraction

THRESHOLD = 5
SMALL = "<5"
WITHHELD = "n.d."
INF = 10**12


@dataclass(frozen=True)
class Equation:
    total: Hashable
    members: tuple[Hashable, ...]


def _bounds(key: Hashable, values: dict, primary: set, hidden: set) -> tuple[int, int]:
    if key not in hidden:
        return values[key], values[key]
    return (1, THRESHOLD - 1) if key in primary else (THRESHOLD, INF)


def _interval_leak(eq: Equation, values: dict, primary: set, hidden: set) -> Hashable | None:
    """A hidden cell of the equation whose value the bounds and the shown cells pin to one number."""
    cells = [eq.total, *eq.members]
    if not any(c in hidden for c in cells):
        return None
    # total - Σ members = 0: each cell's range given every other cell's range
    signs = {eq.total: 1, **{m: -1 for m in eq.members}}
    for c in cells:
        if c not in hidden:
            continue
        lo_rest = hi_rest = 0
        for o in cells:
            if o == c:
                continue
            lo, hi = _bounds(o, values, primary, hidden)
            s = -signs[o] * signs[c]  # c = Σ s·o
            lo_rest += s * (lo if s > 0 else hi)
            hi_rest += s * (hi if s > 0 else lo)
        own_lo, own_hi = _bounds(c, values, primary, hidden)
        if max(own_lo, lo_rest) == min(own_hi, hi_rest):
            return c
    return None


def _rank(rows: list[list[Fraction]]) -> int:
    m = [r[:] for r in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for col in range(cols):
        pivot = next((i for i in range(rank, len(m)) if m[i][col] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][col] != 0:
                f = m[i][col] / m[rank][col]
                m[i] = [a - f * b for a, b in zip(m[i], m[rank], strict=True)]
        rank += 1
    return rank


def _linear_leak(equations: list[Equation], hidden: set) -> Hashable | None:
    """A hidden cell that the equations together determine (its unit vector lies in their row space)."""
    var = sorted(hidden, key=repr)
    if not var:
        return None
    index = {v: i for i, v in enumerate(var)}
    rows = []
    for eq in equations:
        row = [Fraction(0)] * len(var)
        for c, s in ((eq.total, 1), *((m, -1) for m in eq.members)):
            if c in index:
                row[index[c]] += s
        if any(row):
            rows.append(row)
    if not rows:
        return None
    base = _rank(rows)
    for v in var:
        unit = [Fraction(0)] * len(var)
        unit[index[v]] = Fraction(1)
        if _rank([*rows, unit]) == base:
            return v
    return None


def suppress(values: dict[Hashable, int], equations: list[Equation]) -> tuple[set, set]:
    """(primary, complementary) hidden cells of one table of counts."""
    primary = {k for k, v in values.items() if 0 < v < THRESHOLD}
    hidden = set(primary)
    for _ in range(len(values) + 1):
        leak, where = None, []
        for eq in equations:
            leak = _interval_leak(eq, values, primary, hidden)
            if leak is not None:
                where = [eq]
                break
        if leak is None:
            leak = _linear_leak(equations, hidden)
            where = [eq for eq in equations if leak in (eq.total, *eq.members)]
        if leak is None:
            break
        candidates = [c for eq in where for c in (eq.total, *eq.members) if c not in hidden and values[c] > 0]
        if not candidates:  # every other cell is hidden or zero: nothing more to hide that would help
            break
        hidden.add(min(candidates, key=lambda c: (values[c], repr(c))))
    return primary, hidden - primary


def shown(value: int, key: Hashable, primary: set, complementary: set) -> int | str:
    if key in primary:
        return SMALL
    if key in complementary:
        return WITHHELD
    return value
