"""Security headers on every response: pages, errors (404 for an unknown path, 405, the CSRF 403,
a body the API cannot decode), static files and downloads.

Litestar's ``response_headers`` reach only the responses of matched route handlers, so the headers
are also added by a ``before_send`` hook, which sees every response the app sends. A header the
handler already set (a download's own ``X-Content-Type-Options``, say) is left as it is.
"""

from __future__ import annotations

from typing import Final

from litestar.datastructures import MutableScopeHeaders, ResponseHeader
from litestar.types import Message, Scope

# No inline script or style anywhere (htmx is vendored; the signature pad is a static script).
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)
HEADERS: Final[dict[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": CSP,
    # Browsers honour HSTS only over HTTPS (RFC 6797 §8.1), so it is harmless on the embedded
    # default's plain HTTP and binding behind the production TLS proxy. No includeSubDomains: the
    # portal does not speak for the rest of the government's domain.
    "Strict-Transport-Security": "max-age=31536000",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
SECURITY_HEADERS: Final = [ResponseHeader(name=k, value=v) for k, v in HEADERS.items()]


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: every missing security header onto every HTTP response."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in HEADERS.items():
        if name not in headers:
            headers[name] = value
