"""The composition root of the HTTP service."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, openapi
from api.hardening import BodyLimitMiddleware, SecurityHeadersMiddleware
from api.logging import RequestContextMiddleware, configure_logging
from domain.kernel.db import dispose_engine
from integrations.identity.jwt import require_production_keys

DESCRIPTION = """
Backend del **Punto Unico di Accesso (PUA)** dell'Ambito distrettuale di Crema: anagrafica delle persone e
cartelle sociali, accesso al PUA, valutazioni multidimensionali (VMD), progetti individualizzati, dimissioni
protette, liste d'attesa RSA, scambio FHIR R4 con ASST e indicatori LEPS.

Ogni chiamata a `/api` richiede un token Bearer (JWT). Gli errori sono restituiti come
`application/problem+json` (RFC 9457) con il campo che non ha superato la validazione.
"""


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    await dispose_engine()


def create_app() -> FastAPI:
    configure_logging()
    require_production_keys()  # no JWKS_URL / JWT_PUBLIC_KEY_FILE: refuse to start unless DEV_MODE is on
    # The tags and their descriptions are set by openapi.install (api/openapi.py TAGS), the one list of them.
    app = FastAPI(title="PUA Ambito di Crema", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    from deploy.composition import compose

    compose()  # every handler, subscriber, scope builder and hook is wired before the first request
    errors.install(app)
    openapi.install(app)
    # Added innermost first: the request context wraps everything (its id and log line cover a refused body too),
    # security headers wrap the 413 answers, the body limit runs before routing and authentication.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    from api import routes

    routes.include_all(app)
    return app
