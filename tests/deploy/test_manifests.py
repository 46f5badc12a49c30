"""Static checks of the container files (they are not run in CI): they parse, point at modules that exist, and
keep beat single."""
from __future__ import annotations

import importlib
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _deployments() -> dict[str, dict]:
    out = {}
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for d in _docs(f):
            if d.get("kind") == "Deployment":
                out[d["metadata"]["name"]] = d
    return out


async def test_k8s_has_api_worker_and_a_single_beat():
    deps = _deployments()
    assert set(deps) == {"pua-api", "pua-worker", "pua-beat"}
    beat = deps["pua-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    for d in deps.values():
        c = d["spec"]["template"]["spec"]["containers"][0]
        refs = {next(iter(r.values()))["name"] for r in c["envFrom"]}
        assert refs == {"pua-config", "pua-secrets"}
    probe = deps["pua-api"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    assert probe == "/health/ready"
    kustom = _docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    assert all((DEPLOY / "k8s" / r).exists() for r in kustom["resources"])


async def test_compose_services_and_redis_broker():
    compose = _docs(DEPLOY / "docker-compose.yml")[0]
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker", "beat"} <= set(services)
    for name in ("api", "worker", "beat"):
        assert services[name]["environment"]["BROKER_URL"] == "redis://redis:6379/0"
    assert services["worker"]["command"][:4] == ["celery", "-A", "workers.celery_app", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "workers.celery_app", "beat"]


async def test_commands_name_importable_modules():
    importlib.import_module("workers.celery_app")
    assert callable(importlib.import_module("api.main").create_app)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert '"api.main:create_app", "--factory"' in dockerfile
    for pkg in ("api", "domain", "integrations", "schemas", "workers", "deploy"):
        assert f"COPY {pkg} ./{pkg}" in dockerfile
