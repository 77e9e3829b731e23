"""
In-process detection of brute force, stuffing, privilege escalation and data hoarding.

:class:`AnomalyDetector` is an :class:`~otel_audit.EventObserver`: the AuditProcessor
hands it every tagged security event on the application's thread, after redaction. It
keeps small sliding windows in memory and emits ``alert.*`` security events through the
same pipeline, so alerts reach the SIEM with the trace id and request context of the
request that tripped them. The same detections ship as Sigma rules under
``detections/sigma/`` for SIEMs that prefer to run them centrally.

Switch it on with ``OTEL_PYTHON_AUDIT_DETECTIONS=true``; thresholds come from
``OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD``, ``…_STUFFING_THRESHOLD``,
``…_DETECTION_WINDOW_S``, ``…_EXPORT_THRESHOLD`` and ``…_ADMIN_ROLES``.

Memory is bounded whatever the traffic: each window keeps at most ``threshold`` entries
per key, each detection tracks at most ``max_keys`` keys (least recently seen evicted
first, counted in ``stats``), and an alert for one key is not repeated within a window.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from opentelemetry._logs import LogRecord

from otel_audit import semconv
from otel_audit._api import security_event
from otel_audit._processor import ProcessorStats
from otel_audit._settings import AuditSettings

__all__ = ["Alert", "AnomalyDetector"]

BRUTE_FORCE: Final = "alert.brute_force"
CREDENTIAL_STUFFING: Final = "alert.credential_stuffing"
PRIVILEGE_ESCALATION: Final = "alert.privilege_escalation"
UNUSUAL_DATA_ACCESS: Final = "alert.unusual_data_access"

ALERT_RULE: Final = "audit.alert.rule"
"""Which detection fired (``brute_force.account``, ``privilege_escalation.self_grant``…)."""
ALERT_KEY: Final = "audit.alert.key"
"""The attribute the detection counted by (``user.name``, ``client.address``…)."""
ALERT_COUNT: Final = "audit.alert.count"
"""How many events (or records, for data access) were seen in the window."""
ALERT_WINDOW_S: Final = "audit.alert.window_s"
"""The window length in seconds."""

_ROLE_KEYS: Final = ("audit.target.role", "audit.role", "role", "audit.target.permission")
_TARGET_USER_KEYS: Final = ("audit.target.user", "audit.target.user.id", "audit.target.id")
_FAILURES: Final = frozenset({"authentication.failure"})
_GRANTS: Final = frozenset({"account.role_granted", "account.permission_granted"})
_EXPORTS: Final = frozenset({"data.exported"})
_MAX_EXPORT_ENTRIES: Final = 256

# Set while the detector emits its own alerts: the emit re-enters the provider, the
# AuditProcessor and therefore observe() on the same thread; this keeps that loop shut.
_EMITTING: ContextVar[bool] = ContextVar("otel_audit_detect_emitting", default=False)

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert to emit: event name, target, reason and extra attributes."""

    name: str
    target: str | None
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


class _LRU(Generic[_K, _V]):
    """A dict capped at ``cap`` keys; the least recently touched key goes first."""

    def __init__(self, cap: int, stats: ProcessorStats, counter: str) -> None:
        self._cap = cap
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._stats = stats
        self._counter = counter

    def get_or_create(self, key: _K, factory: Callable[[], _V]) -> _V:
        value = self._data.get(key)
        if value is None:
            value = factory()
            self.set(key, value)
        else:
            self._data.move_to_end(key)
        return value

    def get(self, key: _K) -> _V | None:
        return self._data.get(key)

    def set(self, key: _K, value: _V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._cap:
            self._data.popitem(last=False)
            self._stats.incr(self._counter)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class _Rule:
    """One failure-counting detection: rule id, alert name, reason, counted attribute."""

    id: str
    name: str
    reason: str
    key_attr: str


_BF_ACCOUNT: Final = _Rule(
    "brute_force.account", BRUTE_FORCE, "failures_per_account", semconv.USER_NAME
)
_BF_ADDRESS: Final = _Rule(
    "brute_force.address", BRUTE_FORCE, "failures_per_address", semconv.CLIENT_ADDRESS
)
_STUFFING: Final = _Rule(
    "credential_stuffing",
    CREDENTIAL_STUFFING,
    "distinct_accounts_per_address",
    semconv.CLIENT_ADDRESS,
)


def _text(attrs: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return str(value)
    return None


class AnomalyDetector:
    """
    Watch security events and raise alerts for four patterns.

    * **Brute force**: ``brute_force_threshold`` ``authentication.failure`` events for one
      account (``user.name``, else ``user.id``) or from one ``client.address`` within
      ``window_s``.
    * **Credential stuffing**: failures for ``stuffing_threshold`` distinct accounts from
      one ``client.address`` within ``window_s``.
    * **Privilege escalation**: ``account.role_granted``/``account.permission_granted``
      of a role in ``admin_roles`` (from ``audit.target.role`` or ``audit.role``), or any
      grant where the actor is the target (self-grant).
    * **Unusual data access**: ``data.exported`` events whose ``audit.data.record_count``
      adds up to more than ``export_threshold`` for one actor within ``window_s``.

    ``observe`` never raises and ignores ``alert.*`` events. It is thread-safe: the state
    is guarded by one lock, and alerts are emitted after the lock is released.

    Args:
        brute_force_threshold: Failures per account or address that make an alert.
        stuffing_threshold: Distinct failing accounts per address that make an alert.
        window_s: Sliding window, also the quiet period before the same key re-alerts.
        export_threshold: Records exported per actor in the window above which to alert.
        admin_roles: Role names (case-insensitive) that count as admin-level.
        max_keys: Keys tracked per detection before the least recent is evicted.
        emit: Where alerts go (default :func:`otel_audit.security_event`; a test seam).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        brute_force_threshold: int = 5,
        stuffing_threshold: int = 10,
        window_s: float = 300.0,
        export_threshold: int = 10_000,
        admin_roles: Iterable[str] = ("admin", "root", "superuser", "owner"),
        max_keys: int = 10_000,
        emit: Callable[[Alert], object] | None = None,
        _clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value, minimum in (
            ("brute_force_threshold", brute_force_threshold, 1),
            ("stuffing_threshold", stuffing_threshold, 2),
            ("export_threshold", export_threshold, 1),
            ("max_keys", max_keys, 1),
        ):
            if value < minimum:
                msg = f"{name} must be an integer >= {minimum}, got {value!r}"
                raise ValueError(msg)
        if not window_s > 0:
            msg = f"window_s must be > 0, got {window_s!r}"
            raise ValueError(msg)
        self._bf = brute_force_threshold
        self._stuff = stuffing_threshold
        self._window = float(window_s)
        self._export = export_threshold
        self._admin = frozenset(r.lower() for r in admin_roles)
        self._emit = emit or _emit_security_event
        self._clock = _clock
        self._lock = threading.Lock()
        self.stats = ProcessorStats()
        stats = self.stats
        self._by_account: _LRU[str, deque[float]] = _LRU(max_keys, stats, "evicted.account")
        self._by_address: _LRU[str, deque[float]] = _LRU(max_keys, stats, "evicted.address")
        self._accounts_by_address: _LRU[str, OrderedDict[str, float]] = _LRU(
            max_keys, stats, "evicted.stuffing"
        )
        self._exports: _LRU[str, deque[tuple[float, int]]] = _LRU(max_keys, stats, "evicted.export")
        self._alerted: _LRU[tuple[str, str], float] = _LRU(max_keys * 4, stats, "evicted.alerted")
        self._handlers: dict[str, Callable[[Mapping[str, Any], float], list[Alert]]] = {}
        for name in _FAILURES:
            self._handlers[name] = self._on_failure
        for name in _GRANTS:
            self._handlers[name] = self._on_grant
        for name in _EXPORTS:
            self._handlers[name] = self._on_export

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AnomalyDetector:
        """A detector with the thresholds of ``settings`` (what ``configure()`` uses)."""
        return cls(
            brute_force_threshold=settings.brute_force_threshold,
            stuffing_threshold=settings.stuffing_threshold,
            window_s=settings.detection_window_s,
            export_threshold=settings.export_threshold,
            admin_roles=settings.admin_roles,
        )

    def tracked_keys(self) -> int:
        """How many keys the windows hold right now (for tests and the memory bound)."""
        with self._lock:
            return (
                len(self._by_account)
                + len(self._by_address)
                + len(self._accounts_by_address)
                + len(self._exports)
            )

    def observe(self, log_record: LogRecord) -> None:
        """Look at one tagged security event; emit alerts it completes. Never raises."""
        if _EMITTING.get():
            return
        try:
            attrs = log_record.attributes or {}
            name = log_record.event_name or attrs.get(semconv.AUDIT_EVENT_NAME)
            if not isinstance(name, str) or name.startswith("alert."):
                return
            handler = self._handlers.get(name)
            if handler is None:
                return
            now = self._clock()
            with self._lock:
                alerts = handler(attrs, now)
        except Exception:
            self.stats.incr("errors")
            return
        if alerts:
            self._send(alerts)

    def _send(self, alerts: list[Alert]) -> None:
        token = _EMITTING.set(True)
        try:
            for alert in alerts:
                try:
                    self._emit(alert)
                    self.stats.incr(f"alerts.{alert.name}")
                except Exception:
                    self.stats.incr("emit_errors")
        finally:
            _EMITTING.reset(token)

    # --- detections (called with the lock held) -----------------------------------

    def _first_alert(self, rule: str, key: str, now: float) -> bool:
        """True unless ``rule`` already alerted for ``key`` within the window."""
        last = self._alerted.get((rule, key))
        if last is not None and now - last < self._window:
            return False
        self._alerted.set((rule, key), now)
        return True

    def _count(self, table: _LRU[str, deque[float]], key: str, now: float) -> int | None:
        """Record one event; return the count if the last ``threshold`` fit the window."""
        window = table.get_or_create(key, lambda: deque(maxlen=self._bf))
        window.append(now)
        if len(window) == self._bf and now - window[0] <= self._window:
            return len(window)
        return None

    def _on_failure(self, attrs: Mapping[str, Any], now: float) -> list[Alert]:
        alerts: list[Alert] = []
        address = _text(attrs, semconv.CLIENT_ADDRESS)
        common: dict[str, Any] = {ALERT_WINDOW_S: self._window}
        if address is not None:
            common[semconv.CLIENT_ADDRESS] = address
        account_key = semconv.USER_NAME if _text(attrs, semconv.USER_NAME) else semconv.USER_ID
        account = _text(attrs, account_key)
        if account is not None:
            count = self._count(self._by_account, account, now)
            self._fire(alerts, _BF_ACCOUNT, account, count, common, now, key_attr=account_key)
        if address is not None:
            count = self._count(self._by_address, address, now)
            self._fire(alerts, _BF_ADDRESS, address, count, common, now)
            if account is not None:
                distinct = self._distinct_accounts(address, account, now)
                reached = distinct if distinct >= self._stuff else None
                self._fire(alerts, _STUFFING, address, reached, common, now)
        return alerts

    def _fire(  # noqa: PLR0917  # internal; one call site per rule
        self,
        alerts: list[Alert],
        rule: _Rule,
        key: str,
        count: int | None,
        common: Mapping[str, Any],
        now: float,
        *,
        key_attr: str | None = None,
    ) -> None:
        """Append ``rule``'s alert for ``key`` if ``count`` reached it, once per window."""
        if count is None or not self._first_alert(rule.id, key, now):
            return
        details = {
            **common,
            ALERT_RULE: rule.id,
            ALERT_KEY: key_attr or rule.key_attr,
            ALERT_COUNT: count,
        }
        alerts.append(Alert(rule.name, key, rule.reason, details))

    def _distinct_accounts(self, address: str, account: str, now: float) -> int:
        seen = self._accounts_by_address.get_or_create(address, OrderedDict)
        seen[account] = now
        seen.move_to_end(account)
        horizon = now - self._window
        while seen:
            oldest_account, oldest = next(iter(seen.items()))
            if oldest >= horizon and len(seen) <= self._stuff:
                break
            del seen[oldest_account]
        return len(seen)

    def _on_grant(self, attrs: Mapping[str, Any], now: float) -> list[Alert]:
        role = _text(attrs, *_ROLE_KEYS)
        target = _text(attrs, *_TARGET_USER_KEYS, semconv.AUDIT_TARGET)
        actors = {a for a in (_text(attrs, semconv.USER_ID), _text(attrs, semconv.USER_NAME)) if a}
        self_grant = target is not None and target in actors
        admin = role is not None and role.lower() in self._admin
        if not (self_grant or admin):
            return []
        kind = "self_grant" if self_grant else "admin_role"
        rule = f"privilege_escalation.{kind}"
        key = f"{sorted(actors)}|{target}|{role}"
        if not self._first_alert(rule, key, now):
            return []
        details: dict[str, Any] = {
            ALERT_RULE: rule,
            ALERT_KEY: "audit.target.role" if admin and not self_grant else semconv.USER_ID,
            ALERT_COUNT: 1,
        }
        if role is not None:
            details["audit.target.role"] = role
        reason = "self_grant" if self_grant else "admin_role_granted"
        return [Alert(PRIVILEGE_ESCALATION, target, reason, details)]

    def _on_export(self, attrs: Mapping[str, Any], now: float) -> list[Alert]:
        actor = _text(attrs, semconv.USER_ID, semconv.USER_NAME, semconv.CLIENT_ADDRESS)
        raw = attrs.get(semconv.AUDIT_RECORD_COUNT)
        if actor is None or raw is None or isinstance(raw, bool):
            return []
        try:
            count = int(raw)
        except (TypeError, ValueError):
            return []
        if count <= 0:
            return []
        entries = self._exports.get_or_create(actor, deque)
        entries.append((now, count))
        horizon = now - self._window
        while entries and entries[0][0] < horizon:
            entries.popleft()
        if len(entries) > _MAX_EXPORT_ENTRIES:
            # Merge the two oldest entries: the total stays exact, the older part of the
            # window just lives a little longer. Keeps one actor's memory bounded.
            (_, first), (second_time, second) = entries.popleft(), entries.popleft()
            entries.appendleft((second_time, first + second))
        total = sum(c for _, c in entries)
        if total <= self._export or not self._first_alert("unusual_data_access", actor, now):
            return []
        return [
            Alert(
                UNUSUAL_DATA_ACCESS,
                actor,
                "export_volume",
                {
                    ALERT_RULE: "unusual_data_access",
                    ALERT_KEY: semconv.USER_ID,
                    ALERT_COUNT: total,
                    ALERT_WINDOW_S: self._window,
                },
            )
        ]


def _emit_security_event(alert: Alert) -> object:
    return security_event(alert.name, target=alert.target, reason=alert.reason, **alert.details)
