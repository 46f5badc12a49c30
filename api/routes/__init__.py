"""Every router of the service, in one place, so tests can walk them all (permission matrix)."""
from fastapi import FastAPI


def include_all(app: FastAPI) -> None:
    from api import health
    from api.routes import (  # noqa: F401  (they add fhir's routes)
        fhir,
        fhir_care,
        fhir_discharge,
        fhir_registry,
        fhir_reports,
    )

    # A request is matched against the routes one by one, in the order they are included (about a microsecond
    # each, no prefix shortcut): the hot paths first — the person read, then the FHIR façade (ASST's discharge
    # transactions and reads paid ~1 ms matching every /api route first), then the rest of /api.
    persons, *others = _api_modules()
    app.include_router(health.router)
    app.include_router(persons.router, prefix="/api")
    app.include_router(fhir.fhir_router, prefix=fhir.PREFIX)  # its own name: not one of the /api routers
    for module in others:
        app.include_router(module.router, prefix="/api")
    fhir.install(app)  # after api.errors.install: /fhir errors become OperationOutcome


def _api_modules():
    import importlib
    import pkgutil

    from api import routes

    # persons first (include_all relies on it): the person read is the hottest path
    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: (m.name != "persons", m.name)):
        mod = importlib.import_module(f"api.routes.{info.name}")
        if hasattr(mod, "router"):
            yield mod
