"""
What the WSGI and ASGI middlewares share.

Who the client is, which request this is, which status codes are security events, and a
guard around user hooks.

Everything here runs once per request on the application's thread, so the expensive
choices (CIDR parsing, route globs) are made once in :class:`WebAudit`'s constructor and
the per-request work is a few dictionary look-ups.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import itertools
import os
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, Final, Generic, TypeVar

from otel_audit import semconv
from otel_audit._api import security_event
from otel_audit._context import Actor, RequestContext, to_actor
from otel_audit._processor import ProcessorStats
from otel_audit._settings import AuditSettings, HttpEvent

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SERVER_ERROR_EVENT: Final = "service.server_error"
"""The automatic event for a 5xx answer on a security-sensitive route."""

# A request id we accept from a client: short and free of anything that could forge log
# lines or smuggle markup. Anything else is replaced by a generated id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_MAX_HEADER = 4096
_MAX_HOPS = 32
_USER_AGENT_MAX = 512

_T = TypeVar("_T")


class _RequestIds:
    """
    Unguessable request ids without a system call per request.

    ``uuid.uuid4()`` and ``os.urandom`` call ``getrandom()``, which releases the GIL: on a
    busy threaded server the request thread then queues behind the other threads for up to
    a switch interval, once per request. Instead a keyed BLAKE2b over a counter (as
    unpredictable as the 256-bit key drawn once per process) never lets go of the GIL.
    A forked worker draws its own key, so sibling workers never repeat each other's ids.
    """

    def __init__(self) -> None:
        self.rekey()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.rekey)

    def rekey(self) -> None:
        self._key = os.urandom(32)
        self._counter = itertools.count()

    def __call__(self) -> str:
        # next() on itertools.count is atomic under the GIL: no lock needed across threads.
        block = next(self._counter).to_bytes(16, "little")
        return hashlib.blake2b(block, key=self._key, digest_size=16).hexdigest()


new_request_id: Final = _RequestIds()
"""A fresh random request id: 32 hex digits (128 bits)."""


def request_id_from(value: str | None) -> str:
    """The client's request id if it is well-formed, else a fresh one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def _strip_port(text: str) -> str:
    """``[2001:db8::1]:443`` → ``2001:db8::1``; ``192.0.2.1:80`` → ``192.0.2.1``."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text
    if text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        return text.split(":", 1)[0]
    return text


@lru_cache(maxsize=4096)
def _peer_text(peer: str) -> str:
    """A peer address as reported when no proxy is trusted: normalised if it is an IP."""
    address = parse_address(peer)
    return peer if address is None else str(address)


@lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    """An IP address from a header or peer value, unwrapping IPv4-mapped IPv6."""
    try:
        address = ipaddress.ip_address(_strip_port(text))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_for(header: str) -> list[str]:
    """
    The ``for=`` values of an RFC 7239 ``Forwarded`` header, left (client) to right.

    An element without ``for=`` contributes an empty string, so that the hop count stays
    right and the walk stops there instead of skipping an unknown hop.
    """
    out: list[str] = []
    for element in header.split(","):
        value = ""
        for pair in element.split(";"):
            key, sep, raw = pair.partition("=")
            if sep and key.strip().lower() == "for":
                value = raw.strip()
                break
        out.append(value)
    return out


def x_forwarded_for(header: str) -> list[str]:
    """The entries of an ``X-Forwarded-For`` header, left (client) to right."""
    return [item.strip() for item in header.split(",")]


class ClientAddressResolver:
    """
    Decide the client address of a request.

    Forwarding headers are believed only when the peer is a trusted proxy; then the chain
    is walked from the right (the hop nearest to us) and trusted proxies are skipped: the
    first untrusted address is the client. A hop that is not an IP address (``unknown``,
    an obfuscated identifier, garbage) stops the walk at the last address a trusted proxy
    vouched for, so an attacker can neither hide behind junk nor pick an address by
    prepending entries. ``Forwarded`` wins over ``X-Forwarded-For`` when both are sent.

    Args:
        trusted: Networks of the proxies in front of the application.
    """

    def __init__(self, trusted: Iterable[Network]) -> None:
        self._v4 = tuple(n for n in trusted if n.version == 4)  # noqa: PLR2004  # IPv4
        self._v6 = tuple(n for n in trusted if n.version == 6)  # noqa: PLR2004  # IPv6
        self.trusts_any = bool(self._v4 or self._v6)
        """False when no proxy is trusted: forwarding headers are then never read."""
        self._is_trusted = lru_cache(maxsize=4096)(self._check)

    def _check(self, address: Address) -> bool:
        networks = self._v4 if address.version == 4 else self._v6  # noqa: PLR2004  # IPv4
        return any(address in network for network in networks)

    def is_trusted(self, address: Address) -> bool:
        """True if ``address`` belongs to a trusted proxy network."""
        return self.trusts_any and self._is_trusted(address)

    def resolve(
        self, peer: str | None, forwarded: str | None, x_forwarded: str | None
    ) -> str | None:
        """The client address: from the forwarding chain behind trusted proxies, else ``peer``."""
        if not peer:
            return None
        if not self.trusts_any:
            return _peer_text(peer)
        peer_address = parse_address(peer)
        if peer_address is None:
            return peer  # a Unix socket or similar: report what the server gave us
        if not self._is_trusted(peer_address):
            return str(peer_address)
        if forwarded and len(forwarded) <= _MAX_HEADER:
            hops = forwarded_for(forwarded)
        elif x_forwarded and len(x_forwarded) <= _MAX_HEADER:
            hops = x_forwarded_for(x_forwarded)
        else:
            return str(peer_address)
        client = peer_address
        for raw in reversed(hops[-_MAX_HOPS:]):
            hop = parse_address(raw) if raw else None
            if hop is None:
                break
            client = hop
            if not self.is_trusted(hop):
                break
        return str(client)


def guarded(
    hook: Callable[[_T], Any] | None, stats: ProcessorStats, counter: str
) -> Callable[[_T], Actor | None] | None:
    """
    Wrap a user's actor hook so that it can never break a request.

    A hook that raises, or returns something :func:`~otel_audit._context.to_actor` cannot
    use, yields ``None`` and bumps ``counter`` in ``stats``.
    """
    if hook is None:
        return None

    def call(arg: _T) -> Actor | None:
        try:
            return to_actor(hook(arg))
        except Exception:
            stats.incr(counter)
            return None

    call.__wrapped__ = hook  # type: ignore[attr-defined]  # like functools.wraps, for introspection
    return call


class WebAudit:
    """
    The per-request policy both middlewares apply, built once from settings.

    Args:
        settings: Trusted proxies, request-id header, automatic events, sensitive routes.
    """

    def __init__(self, settings: AuditSettings) -> None:
        self.enabled = settings.enabled
        self.resolver = ClientAddressResolver(settings.trusted_proxies)
        self.request_id_header = settings.request_id_header.lower()
        events: frozenset[HttpEvent] = settings.http_events
        self.denied = "denied" in events
        self.rate_limited = "rate_limited" in events
        self.server_error = "server_error" in events
        patterns = [fnmatch.translate(p) for p in settings.sensitive_routes]
        self._sensitive = re.compile("|".join(patterns)) if patterns else None
        self.stats = ProcessorStats()

    def context(
        self,
        *,
        peer: str | None,
        port: int | None,
        forwarded: str | None,
        x_forwarded: str | None,
        agent: str | None,
        request_id: str | None,
        method: str | None,
        path: str,
        actor: Actor | None,
    ) -> RequestContext:
        """The request context from what the server reported (raw header values)."""
        resolved_id = request_id_from(request_id)
        return RequestContext(
            client_address=self.resolver.resolve(peer, forwarded, x_forwarded),
            client_port=port,
            user_agent=None if agent is None else agent[:_USER_AGENT_MAX],
            request_id=resolved_id,
            request_id_generated=resolved_id is not request_id,
            method=method,
            path=path or "/",
            actor=actor,
        )

    def is_sensitive(self, route: str | None, path: str | None) -> bool:
        """True if the route template or the path matches a sensitive-route glob."""
        if self._sensitive is None:
            return False
        return bool(
            (route is not None and self._sensitive.match(route))
            or (path is not None and self._sensitive.match(path))
        )

    def wants(self, status: int) -> bool:
        """Whether ``status`` may produce an automatic event (cheap pre-check)."""
        if status in (401, 403):  # the denial statuses
            return self.denied
        if status == 429:  # noqa: PLR2004  # Too Many Requests
            return self.rate_limited
        return status >= 500 and self.server_error  # noqa: PLR2004  # server errors

    def _event_for(
        self, status: int, route: str | None, path: str | None, already: set[str]
    ) -> tuple[str, str] | None:
        """
        The automatic event name and default reason for ``status``, if any.

        ``already`` holds the categories the application emitted during this request: a
        401 after the app's own ``authentication.failure`` is the same fact, not a second
        event.
        """
        if not self.wants(status):
            return None
        automatic = _STATUS_EVENTS.get(status)
        if automatic is not None:
            name, reason, same_fact = automatic
            if already & same_fact:
                self.stats.incr(f"events_suppressed.{name}")
                return None
            return name, reason
        if self.is_sensitive(route, path):
            return SERVER_ERROR_EVENT, f"http_{status}"
        return None

    def emit_for_status(
        self,
        status: int,
        ctx: RequestContext | None,
        *,
        ask_actor: Callable[[], Actor | None] | None = None,
        route: str | None = None,
        reason: str | None = None,
    ) -> None:
        """
        Emit the automatic event for ``status``, if it calls for one; never raises.

        The actor is the request context's. Only if that is empty, and only when an event
        is emitted, is ``ask_actor`` called: the user's hook, asked again now that the
        application has run its own authentication.
        """
        try:
            path = ctx.path if ctx is not None else None
            route = route or (ctx.route if ctx is not None else None)
            already = ctx.emitted.categories if ctx is not None else set()
            event = self._event_for(status, route, path, already)
            if event is None:
                return
            name, default_reason = event
            details: dict[str, Any] = {semconv.HTTP_RESPONSE_STATUS_CODE: status}
            if route is not None:
                details[semconv.HTTP_ROUTE] = route
            actor = ctx.actor if ctx is not None else None
            if actor is None and ask_actor is not None:
                actor = ask_actor()
            security_event(
                name, actor=actor, target=route or path, reason=reason or default_reason, **details
            )
            self.stats.incr(f"events.{name}")
        except Exception:
            self.stats.incr("event_errors")


_ACCESS: Final = frozenset({"authentication", "authorization"})
# status -> (event, default reason, categories whose app-emitted event already says it)
_STATUS_EVENTS: Final[dict[int, tuple[str, str, frozenset[str]]]] = {
    401: ("authorization.denied", "unauthenticated", _ACCESS),
    403: ("authorization.denied", "forbidden", _ACCESS),
    429: ("rate_limit.exceeded", "http_429", frozenset({"rate_limit"})),
}

_App = TypeVar("_App")


class AuditMiddlewareBase(Generic[_App, _T]):
    """
    What both middlewares hold: the wrapped app, the per-request policy, the guarded hook.

    Args:
        app: The application to wrap.
        actor_hook: Returns the actor from the environ / scope; guarded.
        settings: Override the settings (default: :func:`resolve_settings`).
    """

    def __init__(
        self,
        app: _App,
        *,
        actor_hook: Callable[[_T], Any] | None = None,
        settings: AuditSettings | None = None,
    ) -> None:
        self.app = app
        self._web = WebAudit(resolve_settings(settings))
        self._hook = guarded(actor_hook, self._web.stats, "hook_errors")

    @property
    def stats(self) -> ProcessorStats:
        """Counters: ``hook_errors``, ``event_errors``, ``events.<name>``."""
        return self._web.stats


def resolve_settings(settings: AuditSettings | None) -> AuditSettings:
    """
    The settings a middleware uses: the argument, else those ``configure()`` used, else env.

    Under ``opentelemetry-instrument`` the pipeline is configured before the application
    module is imported, so the middleware and the processor agree on one settings object.
    """
    if settings is not None:
        return settings
    from otel_audit._configure import get_audit_processor  # noqa: PLC0415  # import cycle

    processor = get_audit_processor()
    if processor is not None:
        return processor.settings
    from otel_audit._settings import load_settings  # noqa: PLC0415  # keep the top light

    return load_settings()
