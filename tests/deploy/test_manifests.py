"""Static checks of the container files (they are not run in CI): they parse, point at modules that exist, keep
beat single, keep the owner role's credentials to the migration job, give attachments a shared volume and never
turn on uvicorn's access log."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OWNER_VARS = {"MIGRATION_DATABASE_URL"}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s(kind: str) -> dict[str, dict]:
    out = {}
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for d in _docs(f):
            if d.get("kind") == kind:
                out[d["metadata"]["name"]] = d
    return out


def _deployments() -> dict[str, dict]:
    return _k8s("Deployment")


def _pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _visible_env(container: dict) -> set[str]:
    """Every variable a container can see: its own `env` and every key of the config maps and secrets it loads."""
    secrets = {n: set(d.get("stringData", {})) | set(d.get("data", {})) for n, d in _k8s("Secret").items()}
    maps = {n: set(d.get("data", {})) for n, d in _k8s("ConfigMap").items()}
    names = {e["name"] for e in container.get("env", [])}
    for ref in container.get("envFrom", []):
        if "secretRef" in ref:
            names |= secrets[ref["secretRef"]["name"]]
        else:
            names |= maps[ref["configMapRef"]["name"]]
    return names


def _compose() -> dict:
    return _docs(DEPLOY / "docker-compose.yml")[0]


def _default(value: str) -> str:
    """`${VAR:-default}` -> default (the value compose uses when VAR is unset)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


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


# ------------------------------------------------------------------ issue 9: deployment and operations
async def test_k8s_only_the_migration_job_sees_the_owner_credentials():
    secrets = _k8s("Secret")
    assert set(secrets) == {"pua-secrets", "pua-migration-secrets"}
    assert not OWNER_VARS & set(secrets["pua-secrets"]["stringData"])
    assert OWNER_VARS <= set(secrets["pua-migration-secrets"]["stringData"])
    for name, d in _deployments().items():
        for c in _pod(d)["containers"]:
            assert not OWNER_VARS & _visible_env(c), name
            assert "DATABASE_URL" in _visible_env(c), name
            refs = [next(iter(r.values()))["name"] for r in c["envFrom"]]
            assert "pua-migration-secrets" not in refs, name
    job = _k8s("Job")["pua-migrate"]
    (c,) = _pod(job)["containers"]
    assert OWNER_VARS <= _visible_env(c)
    assert "pua-secrets" not in [next(iter(r.values()))["name"] for r in c["envFrom"]]  # needs nothing else secret


async def test_compose_gives_the_owner_url_to_migrate_only_and_separate_passwords():
    services = _compose()["services"]
    for name in ("api", "worker", "beat"):
        env = services[name]["environment"]
        assert not OWNER_VARS & set(env), name
        assert "pua_owner" not in " ".join(map(str, env.values())), name
    migrate = services["migrate"]["environment"]
    owner_url, app_url = _default(migrate["MIGRATION_DATABASE_URL"]), _default(migrate["DATABASE_URL"])
    owner_password = re.match(r"postgresql\+asyncpg://pua_owner:([^@]+)@", owner_url).group(1)
    app_password = re.match(r"postgresql\+asyncpg://pua_app:([^@]+)@", app_url).group(1)
    assert owner_password != app_password
    init = _compose()["configs"]["init-db"]["content"]
    owner_var = re.search(r"CREATE ROLE pua_owner .*PASSWORD '\$\$\{(\w+)\}'", init).group(1)
    app_var = re.search(r"CREATE ROLE pua_app .*PASSWORD '\$\$\{(\w+)\}'", init).group(1)
    assert owner_var != app_var
    pg_env = services["postgres"]["environment"]
    assert _default(pg_env[owner_var]) == owner_password and _default(pg_env[app_var]) == app_password
    # The extensions come from the migrations, as on a managed Postgres.
    assert "CREATE EXTENSION" not in init


async def test_attachments_live_on_a_shared_volume_at_attachments_dir():
    config = _k8s("ConfigMap")["pua-config"]["data"]
    target = config["ATTACHMENTS_DIR"]
    api = _pod(_deployments()["pua-api"])
    assert api["securityContext"]["fsGroup"] == 10001  # the service user can write the volume
    (c,) = api["containers"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == target)
    volume = next(v for v in api["volumes"] if v["name"] == mount["name"])
    claim = _k8s("PersistentVolumeClaim")[volume["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # two API replicas, possibly on two nodes
    kustom = _docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    assert any(claim in _docs(DEPLOY / "k8s" / r) for r in kustom["resources"])

    compose = _compose()
    api_svc = compose["services"]["api"]
    target = api_svc["environment"]["ATTACHMENTS_DIR"]
    named = [v.split(":")[0] for v in api_svc["volumes"] if v.split(":")[1] == target]
    assert named and named[0] in compose["volumes"]  # a named volume, not the container's own filesystem
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"mkdir -p {target} && chown 10001:10001 {target}" in dockerfile  # a fresh volume is writable


async def test_report_export_files_live_on_the_volume_the_workers_and_the_api_share():
    """A worker writes an export's file, an API pod serves it: both mount the volume that holds the directory."""
    target = _k8s("ConfigMap")["pua-config"]["data"]["REPORT_EXPORTS_DIR"]
    claims = []
    for name in ("pua-api", "pua-worker"):
        pod = _pod(_deployments()[name])
        assert pod["securityContext"]["fsGroup"] == 10001
        (c,) = pod["containers"]
        mount = next(m for m in c["volumeMounts"] if target.startswith(m["mountPath"] + "/"))
        claims.append(next(v for v in pod["volumes"] if v["name"] == mount["name"])["persistentVolumeClaim"])
    assert claims[0] == claims[1]
    compose = _compose()
    target = compose["x-app"]["environment"]["REPORT_EXPORTS_DIR"]
    named = [{v.split(":")[0] for v in compose["services"][svc]["volumes"] if target.startswith(v.split(":")[1] + "/")}
             for svc in ("api", "worker")]
    assert named[0] and named[0] == named[1] and named[0] <= set(compose["volumes"])


async def test_no_server_access_log_anywhere():
    from deploy.run import uvicorn_argv

    assert "--no-access-log" in uvicorn_argv("127.0.0.1", "8000")
    cmd = re.search(r"^CMD (\[.*?\])$", (DEPLOY / "Dockerfile").read_text(), re.S | re.M).group(1)
    assert "--no-access-log" in yaml.safe_load(cmd.replace("\\\n", ""))
    api = _pod(_deployments()["pua-api"])["containers"][0]
    assert "--no-access-log" in api.get("command", ["--no-access-log"])  # the image's CMD when not overridden


async def test_production_manifests_never_use_development_keys():
    config = _k8s("ConfigMap")["pua-config"]["data"]
    assert config.get("DEV_MODE", "false").lower() in ("false", "0", "")
    assert config.get("JWKS_URL", "").startswith("https://")
    for name, d in {**_deployments(), **_k8s("Job")}.items():
        for c in _pod(d)["containers"]:
            assert "DEV_MODE" not in {e["name"] for e in c.get("env", [])}, name


async def test_idle_connections_outlast_the_proxy():
    """The API keeps an idle connection longer than a proxy in front of it (60 s): with uvicorn's 5 s a request sent
    as the server closed the connection got a reset under load (bench.load)."""
    from deploy.run import KEEP_ALIVE_SECONDS, uvicorn_argv

    def keep_alive(argv: list[str]) -> int:
        return int(argv[argv.index("--timeout-keep-alive") + 1])

    assert KEEP_ALIVE_SECONDS > 60 and keep_alive(uvicorn_argv("127.0.0.1", "8000")) == KEEP_ALIVE_SECONDS
    cmd = re.search(r"^CMD (\[.*?\])$", (DEPLOY / "Dockerfile").read_text(), re.S | re.M).group(1)
    assert keep_alive(yaml.safe_load(cmd.replace("\\\n", ""))) == KEEP_ALIVE_SECONDS
    assert keep_alive(_pod(_deployments()["pua-api"])["containers"][0]["command"]) == KEEP_ALIVE_SECONDS
