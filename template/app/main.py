"""Application factory: settings, lifespan, middleware, routers and exception handlers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from app import __version__
from app.core.config import Settings, get_settings
from app.core.errors import UnhandledErrorMiddleware, register_exception_handlers
from app.core.logging import configure_logging
from app.db.health import ping
from app.db.session import create_engine, create_session_factory
from app.middleware.request_id import REQUEST_ID_HEADER, CorrelationIdMiddleware
from app.middleware.timing import TimingMiddleware
from app.routers import health, items

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    engine = create_engine(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(
        title=settings.project_name,
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if settings.show_docs else None,
        redoc_url="/redoc" if settings.show_docs else None,
        openapi_url="/openapi.json" if settings.show_docs else None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.readiness_checks = {"database": partial(ping, engine)}

    register_exception_handlers(app)
    # Added innermost first: the request id wraps everything, so every response and log has it.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[REQUEST_ID_HEADER],
    )
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(TimingMiddleware)
    app.add_middleware(CorrelationIdMiddleware, header_name=REQUEST_ID_HEADER)

    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(items.router)
    app.include_router(api)
    return app


app = create_app()
