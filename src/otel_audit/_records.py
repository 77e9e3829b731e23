"""
Hand a record to the SDK without its second pass over values we already made clean.

``Logger.emit`` wraps an API ``LogRecord`` in a ``ReadWriteLogRecord``, whose
``BoundedAttributes`` runs every attribute value through the SDK's cleaner (a call per
value, then a lock per key). Our two entry points, the logging bridge and
``security_event()``, have already bounded their values (:mod:`otel_audit._bounded`), and
for the plain ones that cleaner returns them unchanged; every security event pays that
pass on the application's thread, so it is skipped where it is provably a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadWriteLogRecord

from otel_audit._bounded import is_plain


def writable(
    logger: Any, record: LogRecord, *, plain: bool | None = None
) -> LogRecord | ReadWriteLogRecord:
    """
    What to pass to ``logger.emit``: ``record`` wrapped with its attributes in place.

    Only when the logger is the SDK's, no attribute limit could apply (no value-length
    limit, count within the limit), every key is a non-empty string and every value is
    plain (:func:`~otel_audit._bounded.is_plain`); otherwise ``record`` itself, which the
    SDK cleans and limits as usual. ``plain=True`` says the caller has just checked keys
    and values, or bounded them into the cleaner's shape with
    :func:`~otel_audit._bounded.bound_mapping` (the empty key is still looked for).
    """
    limits = getattr(logger, "_log_record_limits", None)
    attributes = record.attributes
    if (
        limits is None
        or attributes is None
        or limits.max_log_record_attribute_length is not None
        or (
            limits.max_log_record_attributes is not None
            and len(attributes) > limits.max_log_record_attributes
        )
        or "" in attributes
        or (
            not plain
            and (
                not all(type(key) is str for key in attributes)
                or not all(map(is_plain, attributes.values()))
            )
        )
    ):
        return record
    record.attributes = None
    wrapped = ReadWriteLogRecord(
        log_record=record,
        resource=logger.resource,
        instrumentation_scope=logger.instrumentation_scope,
        limits=limits,
    )
    inner = getattr(record.attributes, "_dict", None)
    if type(inner) is not dict:  # not the SDK shape we know: let it clean them
        record.attributes = attributes
        return record
    inner.update(attributes)
    return wrapped


def attribute_dict(attributes: Any) -> Mapping[str, Any]:
    """
    For reading: the dict behind an SDK ``BoundedAttributes``, else ``attributes`` itself.

    ``BoundedAttributes.items()`` goes through a Python ``__getitem__`` per key; the hot
    paths that only read (redaction's checks, the wire encoder) read its dict instead.
    """
    inner = getattr(attributes, "_dict", None)
    return inner if type(inner) is dict else attributes


def direct_dict(attributes: Any, room: int = 1) -> dict[str, Any] | None:
    """
    For writing: the dict behind a ``BoundedAttributes`` when a write there equals its own.

    That is when the mapping is mutable, no value-length limit applies and ``room`` more
    keys fit under the count limit. Writers put only clean values there (strings,
    numbers, tuples, dicts with string keys: what the SDK's cleaner would return), so
    its per-key clean and lock are no-ops and are skipped. None otherwise: write through
    the mapping, which then cleans, truncates, counts or raises as the SDK does.
    """
    inner = getattr(attributes, "_dict", None)
    if (
        type(inner) is not dict
        or getattr(attributes, "_immutable", True)
        or getattr(attributes, "max_value_len", 0) is not None
    ):
        return None
    maxlen = getattr(attributes, "maxlen", None)
    if maxlen is not None and len(inner) + room > maxlen:
        return None
    return inner
