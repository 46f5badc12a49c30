"""Every router of the service, in one place, so tests can walk them all (permission matrix)."""
from fastapi import FastAPI


def include_all(app: FastAPI) -> None:
    from api import health

    app.include_router(health.router)
    for module in _api_modules():
        app.include_router(module.router, prefix="/api")
    from api.routes import (  # noqa: F401  (they add fhir's routes)
        fhir,
        fhir_care,
        fhir_discharge,
        fhir_registry,
        fhir_reports,
    )

    app.include_router(fhir.fhir_router, prefix=fhir.PREFIX)  # its own name: not one of the /api routers
    fhir.install(app)  # after api.errors.install: /fhir errors become OperationOutcome


def _api_modules():
    import importlib
    import pkgutil

    from api import routes

    # persons first: a request is matched against the routers in order, and the person read is the hot path
    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: (m.name != "persons", m.name)):
        mod = importlib.import_module(f"api.routes.{info.name}")
        if hasattr(mod, "router"):
            yield mod
