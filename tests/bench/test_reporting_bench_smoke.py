"""bench.reporting end to end at a tiny scale: a throwaway Postgres, 12,000 synthetic persons, their cartelle over
2020-2025 (the seed's 2023 table × 0.05 open at the end of 2023: every area at least 5, so no cell is hidden) and a
year of events, then every indicator cold beside the count(*) baseline. Finite numbers and the right shape; no
timing assertions."""
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import finite
from deploy.seed import activity
from domain.reporting import definitions

ROOT = Path(__file__).resolve().parents[2]


def test_reporting_bench_smoke():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "DEV_KEYS_DIR", "PRINCIPAL_CACHE_SECONDS")}
    # the throwaway cluster under the default /var/tmp: a pytest-xdist tmp_path is too long for Postgres's socket
    proc = subprocess.run(
        [sys.executable, "-m", "bench.reporting", "--persons", "12000", "--scale", "0.05", "--rounds", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    *doc, summary = proc.stdout.strip().splitlines()
    r = json.loads("\n".join(doc))
    assert summary.startswith("indicators cold (") and "OS cache not dropped" in summary
    # the 2023 report returns the seed's table at this scale, area by area
    assert r["open_cartelle_2023_expected"] == activity.targets(0.05)
    assert r["open_cartelle_2023_report"] == r["open_cartelle_2023_expected"] and r["open_cartelle_2023_match"]
    assert r["rows"]["person"] == 12000 and r["rows"]["access_request"] == 360  # 30 per 1,000 residents
    assert r["indicators"] == len(definitions.codes()) and r["rounds"] == 1
    assert r["largest_fact_table"] == "cartella" and r["cold"] == "server restarted before each measurement"
    assert finite(r["median_report_s"]) and finite(r["median_baseline_s"]) and finite(r["ratio_to_baseline"])
    assert set(r["slowest"]) <= set(definitions.codes()) and len(r["slowest"]) == 5
