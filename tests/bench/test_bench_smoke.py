"""The benchmarks run end to end on a tiny data set and print finite numbers (no timing assertions)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from bench.common import finite, summarize

ROOT = Path(__file__).resolve().parents[2]


def test_summarize_percentiles():
    s = summarize([float(x) for x in range(1, 101)])
    assert (s["n"], s["p50_ms"], s["p95_ms"], s["max_ms"]) == (100, 50.5, 95.05, 100.0)
    assert math.isnan(summarize([])["p50_ms"])


def test_run_all_smoke(tmp_path):
    out = tmp_path / "latest.json"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "DEV_KEYS_DIR", "PRINCIPAL_CACHE_SECONDS")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--persons", "2000", "--ambiti", "3", "--requests", "200",
         "--samples", "30", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== benchmark summary ==" in proc.stdout and "ratio" in proc.stdout
    r = json.loads(out.read_text())
    assert r["seed"]["persons"] == 2000 and r["persons"]["persons_in_db"] >= 2000
    for key in ("cf_lookup", "fuzzy_search"):
        assert r["persons"][key]["n"] == 30
        assert finite(r["persons"][key]["p50_ms"]) and finite(r["persons"][key]["p95_ms"])
    assert r["persons"]["cf_lookup"]["mean_hits"] == 1.0  # every sampled codice fiscale is found
    # the persons spread over three Ambiti: the largest one's user searches, and the search across all is measured
    assert len(r["seed"]["by_ambito"]) == 3 and r["persons"]["ambiti_with_persons"] == 3
    assert r["persons"]["ambito"]["persons"] >= max(r["seed"]["by_ambito"].values())  # + the import's persons
    assert r["persons"]["regional_fuzzy_search"]["n"] == 30 and finite(r["persons"]["regional_fuzzy_search"]["p95_ms"])
    # the regional helpdesk's endpoint, through HTTP as a regional_operator: every request answered
    e = r["persons"]["regional_endpoint"]
    assert e["n"] == 30 and finite(e["p95_ms"]) and set(e["statuses"]) == {"200"} and e["mean_hits"] > 0
    assert "GET /api/regional/persons across all 3 Ambiti (HTTP)" in proc.stdout
    a = r["api_ratio"]
    assert finite(a["ours"]["req_per_s"]) and finite(a["baseline"]["req_per_s"]) and finite(a["ratio"])
    assert a["non_200"] == 0
    f = r["fhir_ratio"]  # the FHIR read and identifier search against the /api read, same server
    assert finite(f["fhir_read_ratio"]) and finite(f["fhir_search_ratio"]) and f["non_200"] == 0
    t = r["fhir_transactions"]  # discharge Bundles: every one accepted, the same one again answered the same
    assert t["statuses"] == {"200": t["bundles"]} and t["replay_200"] and finite(t["resources_per_s"])
    assert t["baseline"]["statuses"] == {"200": t["bundles"]} and finite(t["ratio"]) and t["ratio"] > 0
