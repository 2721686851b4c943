"""What keeps the local web UI local: the Host check, the CSRF token and response headers.

- **Host header** (DNS rebinding): a page on another site whose name resolves to 127.0.0.1
  reaches the server with its own name in ``Host``; only loopback names and the bound host
  are served (Starlette's ``TrustedHostMiddleware`` answers others with 400).
- **Writes** need the server started with ``--allow-write`` *and* the page's CSRF token in the
  ``X-CSRF-Token`` header: another site can neither read the token (same-origin policy) nor
  send a custom header without a CORS preflight, which this server never grants.
- **Escaping**: the pages set user data with ``textContent`` only; the Content-Security-Policy
  below allows scripts from this server alone, so injected markup could not run code anyway.
"""

from __future__ import annotations

import hmac
import secrets

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSRF_HEADER = "X-CSRF-Token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def allowed_hosts(bound_host: str) -> list[str]:
    """The ``Host`` names served: loopback names and the host the server is bound to.

    Args:
        bound_host: the ``--host`` the server listens on.
    Returns:
        Host names without ports, for ``TrustedHostMiddleware``.
    """
    hosts = list(LOOPBACK_HOSTS)
    bare = bound_host.strip("[]")
    for name in (bound_host, bare, f"[{bare}]" if ":" in bare else bare):
        if name not in hosts and name not in ("0.0.0.0", "::", "[::]"):
            hosts.append(name)
    return hosts


def new_csrf_token() -> str:
    """A fresh random token for one server process (embedded in the page it serves)."""
    return secrets.token_hex(32)


def csrf_matches(expected: str, given: str | None) -> bool:
    """Whether ``given`` (the request's ``X-CSRF-Token`` header) is the server's token."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
