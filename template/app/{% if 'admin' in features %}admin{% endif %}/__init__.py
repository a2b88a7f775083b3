"""The back office at /admin (SQLAdmin): superusers only, nothing loaded from another origin.

`install_admin` runs in `create_app` when ADMIN_ENABLED (default: on, except in production);
off, there is no /admin at all (a 404). sqladmin serves its pages, scripts, styles and fonts from
this app (/admin/statics), and the favicon below, so the pages work offline and behind a proxy.
"""

from pathlib import Path
from typing import cast

from fastapi import FastAPI
from fastapi.responses import Response
from sqladmin import Admin
from starlette.middleware import Middleware

from app.admin.auth import SuperuserBackend
from app.admin.origin import SameOriginMiddleware
from app.admin.system import SYSTEM_VIEWS
from app.admin.views import AdminView, discover_views

ADMIN_PATH = "/admin"
# Pages of our own that replace sqladmin's of the same name (with totp: the sign-in page's code;
# without it the folder does not exist and sqladmin's own pages are used).
TEMPLATES = Path(__file__).parent / "templates"
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#206bc4"/></svg>'
)


async def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


def install_admin(app: FastAPI) -> Admin:
    state = app.state
    # Before the mount, so that it is matched first.
    app.add_api_route(f"{ADMIN_PATH}/favicon.svg", favicon, include_in_schema=False)
    admin = Admin(
        app,
        engine=state.read_engine,  # sqladmin only reads: changes go through the services
        base_url=ADMIN_PATH,
        title=f"{state.settings.project_name} admin",
        favicon_url=f"{ADMIN_PATH}/favicon.svg",
        templates_dir=str(TEMPLATES),
        authentication_backend=SuperuserBackend(state),
        middlewares=[Middleware(SameOriginMiddleware)],
    )
    for view in [*SYSTEM_VIEWS, *discover_views()]:
        # A subclass per app: sqladmin keeps its engine on the view class it is given.
        bound = cast(type[AdminView], type(view.__name__, (view,), {"state": state}))
        admin.add_view(bound)
    return admin
