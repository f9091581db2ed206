"""Security headers on every HTTP response: CSP, HSTS, framing, sniffing, referrer, COOP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trellis.exceptions import ConfigurationError
from trellis.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware"]

_FRAME_OPTIONS = frozenset({"DENY", "SAMEORIGIN"})
_REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)
_COOP = frozenset(
    {"same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none"}
)
# The HSTS preload list (hstspreload.org) requires a max-age of at least one year.
_PRELOAD_MIN_AGE = 31_536_000

Policy = str | Mapping[str, str | Iterable[str]]
"""A policy as the header text, or as ``{directive: value or list of values}``."""


class SecurityHeadersMiddleware:
    """Add security headers to every HTTP response that does not set them itself.

    A header the application already put on a response is left as it is, so one route can loosen
    or tighten a policy. ``Strict-Transport-Security`` is only sent on HTTPS requests (browsers
    ignore it over HTTP); behind a proxy the server must report the original scheme.

    Args:
        app: The ASGI application to wrap.
        content_security_policy: ``Content-Security-Policy``, as text or a mapping such as
            ``{"default-src": "'self'", "img-src": ["'self'", "data:"]}``; ``None`` sends none.
        hsts: ``max-age`` in seconds for ``Strict-Transport-Security``; ``None`` sends none.
            Browsers remember it: start small.
        hsts_include_subdomains: Add ``includeSubDomains`` to HSTS.
        hsts_preload: Add ``preload`` to HSTS (needs ``includeSubDomains`` and a year or more).
        frame_options: ``X-Frame-Options``, ``"DENY"`` or ``"SAMEORIGIN"``; ``None`` sends none.
        content_type_options: Send ``X-Content-Type-Options: nosniff``.
        referrer_policy: ``Referrer-Policy`` (one policy or a comma-separated fallback list);
            ``None`` sends none.
        cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``; ``None`` sends none.
        permissions_policy: ``Permissions-Policy``, as text or a mapping such as
            ``{"camera": [], "geolocation": ["self", "https://maps.example"]}``; ``None`` sends
            none.

    Raises:
        ConfigurationError: A value is not one the header allows, contains a line break, or the
            HSTS options contradict each other.
    """

    __slots__ = ("_http_headers", "_https_headers", "app")

    def __init__(
        self,
        app: ASGIApp,
        *,
        content_security_policy: Policy | None = None,
        hsts: int | None = None,
        hsts_include_subdomains: bool = False,
        hsts_preload: bool = False,
        frame_options: str | None = "DENY",
        content_type_options: bool = True,
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        cross_origin_opener_policy: str | None = "same-origin",
        permissions_policy: Policy | None = None,
    ) -> None:
        self.app = app
        headers: list[tuple[str, str]] = []
        if content_security_policy is not None:
            headers.append(("content-security-policy", _csp(content_security_policy)))
        if frame_options is not None:
            value = frame_options.strip().upper()
            _check("frame_options", value, _FRAME_OPTIONS)
            headers.append(("x-frame-options", value))
        if content_type_options:
            headers.append(("x-content-type-options", "nosniff"))
        if referrer_policy is not None:
            tokens = [t.strip().lower() for t in referrer_policy.split(",")]
            for token in tokens:
                _check("referrer_policy", token, _REFERRER_POLICIES)
            headers.append(("referrer-policy", ", ".join(tokens)))
        if cross_origin_opener_policy is not None:
            value = cross_origin_opener_policy.strip().lower()
            _check("cross_origin_opener_policy", value, _COOP)
            headers.append(("cross-origin-opener-policy", value))
        if permissions_policy is not None:
            headers.append(("permissions-policy", _permissions(permissions_policy)))

        secure = list(headers)
        if hsts is not None:
            secure.append(
                ("strict-transport-security", _hsts(hsts, hsts_include_subdomains, hsts_preload))
            )
        elif hsts_include_subdomains or hsts_preload:
            raise ConfigurationError(
                "SecurityHeadersMiddleware: hsts_include_subdomains and hsts_preload need "
                "hsts=<max-age in seconds>, e.g. hsts=31536000"
            )
        # PERF: encoded once; a response only checks which of these it already has.
        self._http_headers = _encode(headers)
        self._https_headers = _encode(secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._https_headers if scope.get("scheme") == "https" else self._http_headers
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                present = {key.lower() for key, _ in headers}
                missing = [h for h in extra if h[0] not in present]
                if missing:
                    # A new list: the application may reuse its header list for other responses.
                    message["headers"] = [*headers, *missing]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _check(option: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ConfigurationError(
            f"SecurityHeadersMiddleware: {option}={value!r} is not valid; use one of "
            f"{', '.join(sorted(allowed))}, or None to send no header"
        )


def _hsts(max_age: int, include_subdomains: bool, preload: bool) -> str:
    if max_age < 0:
        raise ConfigurationError(f"SecurityHeadersMiddleware: hsts must be >= 0, got {max_age}")
    if preload and (not include_subdomains or max_age < _PRELOAD_MIN_AGE):
        raise ConfigurationError(
            "SecurityHeadersMiddleware: hsts_preload needs hsts_include_subdomains=True and "
            f"hsts >= {_PRELOAD_MIN_AGE} (one year), as the browsers' preload list requires"
        )
    value = f"max-age={max_age}"
    if include_subdomains:
        value += "; includeSubDomains"
    if preload:
        value += "; preload"
    return value


def _csp(policy: Policy) -> str:
    if isinstance(policy, str):
        return policy.strip()
    parts = []
    for directive, value in policy.items():
        sources = value if isinstance(value, str) else " ".join(value)
        parts.append(f"{directive} {sources}".strip())
    return "; ".join(parts)


def _permissions(policy: Policy) -> str:
    if isinstance(policy, str):
        return policy.strip()
    parts = []
    for feature, value in policy.items():
        allow = [value] if isinstance(value, str) else list(value)
        # Keywords stay bare; origins are quoted strings in this structured-header syntax.
        items = " ".join(a if a in ("self", "*", "src") else f'"{a}"' for a in allow)
        parts.append(f"{feature}=*" if allow == ["*"] else f"{feature}=({items})")
    return ", ".join(parts)


def _encode(headers: list[tuple[str, str]]) -> tuple[tuple[bytes, bytes], ...]:
    out = []
    for name, value in headers:
        if any(c in value for c in "\r\n\0"):
            raise ConfigurationError(
                f"SecurityHeadersMiddleware: the {name} value {value!r} contains a line break "
                "or NUL; write it on one line"
            )
        try:
            out.append((name.encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise ConfigurationError(
                f"SecurityHeadersMiddleware: the {name} value {value!r} has characters outside "
                "Latin-1; percent-encode URLs in it"
            ) from None
    return tuple(out)
