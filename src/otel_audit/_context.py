"""
Who and where, carried in ``ContextVar``s.

Every event emitted while handling a request (or inside an :func:`audit_scope`) shares
it, across threads started with ``contextvars.copy_context`` and across ``await``.

The web middleware fills :class:`RequestContext`; non-web code and tests use
:func:`request_context` or :func:`set_request_context` directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from otel_audit import semconv
from otel_audit._bounded import bound_mapping


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal that did something.

    Args:
        id: Stable user or service-account id (``user.id``).
        name: Login name (``user.name``).
        roles: Roles held at the time (``user.roles``).
    """

    id: str | None = None
    name: str | None = None
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A list would stay the caller's to change, and events may be built later, on
        # another thread (deferred events): what is recorded is what held at the call.
        if type(self.roles) is not tuple:
            object.__setattr__(self, "roles", tuple(self.roles))

    def attributes(self) -> dict[str, Any]:
        """The actor as OpenTelemetry ``user.*`` attributes."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out[semconv.USER_ID] = self.id
        if self.name is not None:
            out[semconv.USER_NAME] = self.name
        if self.roles:
            out[semconv.USER_ROLES] = tuple(self.roles)
        return out


ActorLike = Actor | str | Mapping[str, Any]


def to_actor(value: ActorLike | None) -> Actor | None:
    """Accept an :class:`Actor`, a user id string, or a mapping with id/name/roles."""
    if value is None or isinstance(value, Actor):
        return value
    if isinstance(value, str):
        return Actor(id=value)
    if isinstance(value, Mapping):
        roles = value.get("roles") or ()
        if isinstance(roles, str):
            roles = (roles,)
        ident = value.get("id")
        name = value.get("name")
        return Actor(
            id=None if ident is None else str(ident),
            name=None if name is None else str(name),
            roles=tuple(str(r) for r in roles),
        )
    return Actor(id=str(value))


class EventLedger:
    """
    Which security-event categories a request has emitted so far.

    Mutable and shared by every copy of one request's context (``update_request_context``
    passes it along), so the middleware can see that the application already recorded,
    say, an authentication failure and not add a second event for the same 401.
    """

    __slots__ = ("categories",)

    def __init__(self) -> None:
        self.categories: set[str] = set()


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the AuditProcessor adds to every record emitted while a request is handled.

    All fields are optional; only those that are set become attributes, and an attribute
    the record already carries is never overwritten.
    """

    client_address: str | None = None
    client_port: int | None = None
    user_agent: str | None = None
    request_id: str | None = None
    method: str | None = None
    route: str | None = None
    path: str | None = None
    session_id: str | None = None
    actor: Actor | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    request_id_generated: bool = field(default=False, compare=False, repr=False)
    emitted: EventLedger = field(default_factory=EventLedger, compare=False, repr=False)
    _attributes: Mapping[str, Any] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Copied for the same reason as Actor.roles: attributes() may run later, on the
        # thread that builds deferred events, and must see the values of this moment.
        if self.extra:
            object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def attributes(self) -> Mapping[str, Any]:
        """
        The context as semantic-convention attributes (read-only).

        Built on first use, so a request that logs nothing never pays for it, then kept:
        the processor reads it for every record of the request. Bounded here because the
        processor writes these straight into the record's dict, past the SDK's cleaning.
        """
        built = self._attributes
        if built is None:
            built = MappingProxyType(bound_mapping(self._build()))
            object.__setattr__(self, "_attributes", built)
        return built

    @property
    def generated_request_id(self) -> str | None:
        """
        The request id when otel-audit generated it (no client sent one), else None.

        Left out of :meth:`attributes`: the processor adds it after redaction, since
        there is nothing of the caller's in it to scan, and scanning a value that is new
        on every request would cost a prefilter call (a GIL release) per event.
        """
        return self.request_id if self.request_id_generated else None

    def _build(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = (
            (semconv.CLIENT_ADDRESS, self.client_address),
            (semconv.CLIENT_PORT, self.client_port),
            (semconv.USER_AGENT_ORIGINAL, self.user_agent),
            (semconv.AUDIT_REQUEST_ID, None if self.request_id_generated else self.request_id),
            (semconv.HTTP_REQUEST_METHOD, self.method),
            (semconv.HTTP_ROUTE, self.route),
            (semconv.URL_PATH, self.path),
            (semconv.SESSION_ID, self.session_id),
        )
        out.update((key, value) for key, value in pairs if value is not None)
        if self.actor is not None:
            out.update(self.actor.attributes())
        out.update(self.extra)
        return out


_MISSING: Any = object()
_REQUEST: ContextVar[RequestContext | None] = ContextVar("otel_audit_request", default=None)
_SCOPE: ContextVar[Mapping[str, Any] | None] = ContextVar("otel_audit_scope", default=None)


def get_request_context() -> RequestContext | None:
    """The request context of the current task or thread, if any."""
    return _REQUEST.get()


def set_request_context(ctx: RequestContext | None) -> Token[RequestContext | None]:
    """Make ``ctx`` the current request context.

    Returns:
        A token for :func:`reset_request_context`; always reset in a ``finally``.
    """
    return _REQUEST.set(ctx)


def reset_request_context(token: Token[RequestContext | None]) -> None:
    """Restore the request context that was current before :func:`set_request_context`."""
    _REQUEST.reset(token)


def update_request_context(**changes: Any) -> None:
    """Change fields of the current request context in place, e.g. the actor after login.

    A no-op outside a request context.
    """
    current = _REQUEST.get()
    if current is None:
        return
    if "actor" in changes:
        changes["actor"] = to_actor(changes["actor"])
    if "request_id" in changes:
        changes.setdefault("request_id_generated", False)  # the caller's: scanned again
    if all(getattr(current, key, _MISSING) == value for key, value in changes.items()):
        return  # e.g. the same (or no) actor set again on every request: nothing to rebuild
    _REQUEST.set(replace(current, **changes))


@contextmanager
def request_context(
    ctx: RequestContext | None = None, /, **fields: Any
) -> Iterator[RequestContext]:
    """Set a request context for the duration of a ``with`` block.

    Either pass a :class:`RequestContext` or its fields as keywords (``actor`` may be
    anything :func:`to_actor` accepts).
    """
    if ctx is None:
        if "actor" in fields:
            fields["actor"] = to_actor(fields["actor"])
        ctx = RequestContext(**fields)
    token = _REQUEST.set(ctx)
    try:
        yield ctx
    finally:
        _REQUEST.reset(token)


def scope_attributes(
    *, actor: ActorLike | None, target: Any, attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """Flatten actor/target/extra attributes the way security events carry them."""
    out: dict[str, Any] = {}
    resolved = to_actor(actor)
    if resolved is not None:
        out.update(resolved.attributes())
    out.update(target_attributes(target))
    out.update(attributes)
    return out


def target_attributes(target: Any) -> dict[str, Any]:
    """A target string becomes ``audit.target``; a mapping ``audit.target.<key>``."""
    if target is None:
        return {}
    if isinstance(target, Mapping):
        return {f"{semconv.AUDIT_TARGET}.{k}": v for k, v in target.items()}
    return {semconv.AUDIT_TARGET: str(target)}


@contextmanager
def audit_scope(
    *, actor: ActorLike | None = None, target: Any = None, **attributes: Any
) -> Iterator[Mapping[str, Any]]:
    """Give every security event emitted inside the block a shared context.

    Like GitLab's auditor block: ``with audit_scope(actor=admin, target="team:42"):``.
    Scopes nest (inner values win) and follow ``await``. Ordinary log records are not
    touched.

    .. versionadded:: 0.1.0
    """
    outer = _SCOPE.get() or {}
    # Bounded once per scope, for the same reason as RequestContext's attributes.
    own = bound_mapping(scope_attributes(actor=actor, target=target, attributes=attributes))
    merged = {**outer, **own}
    frozen = MappingProxyType(merged)
    token = _SCOPE.set(frozen)
    try:
        yield frozen
    finally:
        _SCOPE.reset(token)


def current_scope() -> Mapping[str, Any] | None:
    """The attributes of the innermost :func:`audit_scope`, if any."""
    return _SCOPE.get()
