"""The API documentation pages, served entirely from this app's origin.

FastAPI's own `/docs` and `/redoc` pages load Swagger UI and ReDoc from a public CDN (and ReDoc its
fonts from Google), so behind a proxy, in an air-gapped cluster or offline they are blank.
fastapi-standalone-docs ships those files inside the package: Swagger UI's bundle and CSS are served
under `/docs/`, ReDoc's bundle, its logo and the favicons under `/redoc/` and `/docs/fastapi/`, with
Google Fonts off. FastAPI still serves the pages themselves, `/openapi.json` and the OAuth2 redirect
page (`/docs/oauth2-redirect`), which has no assets of its own.

The package points FastAPI's page builders at the local files for the whole process (every app in
it gets the same `docs_url`/`redoc_url` here, so that is harmless), and does nothing for an app
whose docs are switched off.
"""

from fastapi import FastAPI
from fastapi_standalone_docs import StandaloneDocs


def serve_docs_locally(app: FastAPI) -> None:
    """Serve the assets of `app`'s `/docs` and `/redoc` pages from the app itself."""
    StandaloneDocs(app=app)
