"""bench.audit_volume runs end to end on a tiny data set and prints finite numbers (no timing involved)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_audit_volume_smoke(tmp_path):
    out = tmp_path / "audit.json"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "DEV_KEYS_DIR", "PRINCIPAL_CACHE_SECONDS")}
    proc = subprocess.run([sys.executable, "-m", "bench.audit_volume", "--persons", "1000", "--requests", "120",
                           "--output", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "per 1,000 requests:" in proc.stdout and "a year, region" in proc.stdout
    r = json.loads(out.read_text())
    assert r["requests"] == 120 and r["audit_rows"] >= 120  # every request leaves at least one row
    assert r["per_1000_requests"]["disk_bytes"] > 0 and r["year"]["region"]["rows"] > r["year"]["ambito"]["rows"]
    for op, v in r["per_operation"].items():
        assert all(int(s) < 500 for s in v["statuses"]), (op, v)
