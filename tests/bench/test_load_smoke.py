"""bench.load runs end to end on a tiny seed: every operation of the locust mix ran and none failed (no timing)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.load import OPERATIONS

ROOT = Path(__file__).resolve().parents[2]


def test_load_smoke(tmp_path):
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "DEV_KEYS_DIR", "PRINCIPAL_CACHE_SECONDS")}
    # 20 users (6, 8, 2 and 4 of the four classes) with short think times for 15 s: several hundred requests even on
    # a busy machine, so that every task of every class is picked
    proc = subprocess.run([sys.executable, "-m", "bench.load", "--persons", "2000", "--users", "20", "--duration",
                           "15", "--think", "0.05,0.2", "--vmds", "2", "--plans", "2", "--listed", "1",
                           "--output", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "== load summary ==" in proc.stdout
    r = json.loads(out.read_text())
    (run,) = r["runs"]
    assert run["users"] == 20 and run["failures"] == 0, run["failure_messages"]
    ran = {op for op, v in run["operations"].items() if v["requests"] > 0}
    assert ran == set(OPERATIONS), set(OPERATIONS) - ran
    assert run["audit"]["per_1000_requests"]["rows"] >= 1000  # every request of the mix leaves an audit row
