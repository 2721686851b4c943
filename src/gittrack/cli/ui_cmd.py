"""``gittrack ui``: serve the local web UI (``gittrack.ui``) for one tracking repository."""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser

from gittrack.client import Client
from gittrack.errors import InvalidInputError, InvalidStateError

INSTALL_HINT = 'gittrack ui needs the optional "ui" packages: pip install "gittrack[ui]"'
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ui", help="browse, chart and compare runs and the registry in a local web app"
    )
    parser.add_argument(
        "--repo",
        dest="ui_repo",
        default=None,
        metavar="PATH",
        help="the tracking repository (default: the one containing the current directory)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--open", action="store_true", help="open the UI in a web browser")
    parser.add_argument(
        "--allow-write",
        action="store_true",
        help="allow actions that change the repository (setting run tags); read-only without",
    )
    parser.set_defaults(handler=serve)


def _load_server() -> tuple:
    """uvicorn and the app factory, or the install hint when the ``ui`` extra is missing."""
    try:
        import uvicorn

        from gittrack.ui.app import create_app
    except ModuleNotFoundError as exc:
        raise InvalidStateError(f"{INSTALL_HINT} ({exc.name} is missing)") from None
    return uvicorn, create_app


def serve(args: argparse.Namespace) -> int:
    """Start the server in the foreground until interrupted; returns the exit code."""
    if not 0 < args.port < 65536:
        raise InvalidInputError(f"--port {args.port} must be between 1 and 65535")
    uvicorn, create_app = _load_server()
    try:
        create = create_app(
            Client(args.ui_repo or args.repo), host=args.host, allow_write=args.allow_write
        )
    except ModuleNotFoundError as exc:
        raise InvalidStateError(f"{INSTALL_HINT} ({exc.name} is missing)") from None
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    mode = "read-write" if args.allow_write else "read-only"
    print(f"gittrack ui: {url} ({mode}); press Ctrl+C to stop", file=sys.stderr)
    if args.host not in _LOOPBACK:
        print(
            f"gittrack: warning: --host {args.host} exposes your runs beyond this machine",
            file=sys.stderr,
        )
    if args.open:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create, host=args.host, port=args.port, log_level="warning")
    return 0
