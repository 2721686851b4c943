"""The Starlette application of ``gittrack ui``: routes, error mapping and static files.

Errors are JSON ``{"error": message, "error_code": code}`` with the status of the
``GittrackError`` (400 bad input, 404 not found, 403 policy); a malformed request never
becomes a 500. The charting library is plotly.js's basic bundle from the npm registry, kept at a pinned
version with its licence in ``static/vendor/`` (``scripts/refresh_plotly.sh`` refreshes it) and
served from there, so the UI works offline.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gittrack.client import Client
from gittrack.errors import GittrackError
from gittrack.ui.api import Api
from gittrack.ui.security import SECURITY_HEADERS, allowed_hosts, new_csrf_token

STATIC = Path(__file__).parent / "static"
CHART_JS = STATIC / "vendor" / "plotly-basic.min.js"
RUN_ID = "{run_id}"


class SecurityHeaders:
    """Adds the headers of ``security.SECURITY_HEADERS`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _gittrack_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GittrackError)
    return JSONResponse(
        {"error": str(exc), "error_code": exc.error_code}, status_code=exc.get_http_status_code()
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "error_code": "HTTP"}, status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A bug, not bad input: still one JSON line for the page to show (the server logs it)."""
    return JSONResponse(
        {"error": f"internal error: {type(exc).__name__}: {exc}", "error_code": "INTERNAL_ERROR"},
        status_code=500,
    )


def create_app(client: Client, *, host: str = "127.0.0.1", allow_write: bool = False) -> Starlette:
    """The web application over one tracking repository.

    Args:
        client: the repository to show.
        host: the host the server is bound to (also served in the ``Host`` header check).
        allow_write: whether write endpoints may act (still only with the CSRF token).
    Returns:
        A Starlette ASGI application.
    """
    token = new_csrf_token()
    api = Api(client, allow_write, token)
    index_html = (STATIC / "index.html").read_text(encoding="utf-8")
    page = index_html.replace("{{csrf_token}}", html.escape(token)).replace(
        "{{allow_write}}", "true" if allow_write else "false"
    )
    schemas = SchemaGenerator(
        {"openapi": "3.0.0", "info": {"title": "gittrack ui API", "version": "1"}}
    )

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def plotly(request: Request) -> Response:
        return FileResponse(
            CHART_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    async def openapi(request: Request) -> Response:
        return JSONResponse(schemas.get_schema(routes=routes))

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    async def not_found(request: Request) -> Response:
        return JSONResponse({"error": f"no endpoint {request.url.path}", "error_code": "HTTP"}, 404)

    run = f"/api/runs/{RUN_ID}"
    routes = [
        Route("/", index, include_in_schema=False),
        Route("/api/openapi.json", openapi, include_in_schema=False),
        Route("/api/info", api.info),
        Route("/api/version", api.version),
        Route("/api/experiments", api.experiments),
        Route("/api/runs", api.runs),
        Route("/api/runs.csv", api.runs_csv),
        Route(run, api.run),
        Route(f"{run}/metric", api.metric),
        Route(f"{run}/artifacts", api.artifacts),
        Route(f"{run}/artifact", api.artifact),
        Route(f"{run}/image", api.artifact_image),
        Route(f"{run}/diff", api.diff),
        Route(f"{run}/tags", api.set_tag, methods=["POST"]),
        Route("/api/compare", api.compare),
        Route("/api/commits", api.commits),
        Route("/api/models", api.models),
        Route("/api/models/{name:path}", api.model),
        Route("/api/{rest:path}", not_found, include_in_schema=False),
        Route("/vendor/plotly-basic.min.js", plotly, include_in_schema=False),
        Route("/favicon.ico", no_icon, include_in_schema=False),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host)),
            Middleware(SecurityHeaders),
        ],
        exception_handlers={
            GittrackError: _gittrack_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
