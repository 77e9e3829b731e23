"""The ``OTEL_PYTHON_AUDIT_*`` environment variables.

Registered under the ``opentelemetry_environment_variables`` entry point, so that
``opentelemetry-instrument`` offers a matching ``--audit_…`` flag for each. Every value is
parsed once, at start-up, by :func:`otel_audit.load_settings`; a bad value stops start-up
with a message naming the variable and the accepted values.
"""

from __future__ import annotations

from typing import Final

OTEL_PYTHON_AUDIT_ENABLED: Final = "OTEL_PYTHON_AUDIT_ENABLED"
"""
.. envvar:: OTEL_PYTHON_AUDIT_ENABLED

``true`` (default) or ``false``. With ``false`` the zero-code hook leaves the SDK alone.
"""

OTEL_PYTHON_AUDIT_SECURITY_LOGGERS: Final = "OTEL_PYTHON_AUDIT_SECURITY_LOGGERS"
"""
.. envvar:: OTEL_PYTHON_AUDIT_SECURITY_LOGGERS

Comma-separated stdlib logger names whose records are security events, children included
(``security`` covers ``security.auth``). Default ``security``.
"""

OTEL_PYTHON_AUDIT_REDACTION: Final = "OTEL_PYTHON_AUDIT_REDACTION"
"""
.. envvar:: OTEL_PYTHON_AUDIT_REDACTION

Tier-1 (inline) redaction level: ``standard`` (default: sensitive key names, provider
secret formats, credentials in URLs and free text, checksum-validated cards and IBANs,
US SSNs, emails (pseudonymised) and phone numbers next to a phone keyword) or ``strict``
(also international phone numbers anywhere, high-entropy strings anywhere, and broader key
names such as bare ``key``, ``hash`` or ``signature``). ``off`` is accepted only together
with ``OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF=true``.
"""

OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF: Final = "OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF"
"""
.. envvar:: OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF

``false`` (default) or ``true``: a second key so that redaction is never switched off by a typo.
"""

OTEL_PYTHON_AUDIT_REDACTION_SCOPE: Final = "OTEL_PYTHON_AUDIT_REDACTION_SCOPE"
"""
.. envvar:: OTEL_PYTHON_AUDIT_REDACTION_SCOPE

Which records tier 1 protects: ``all`` (default: every record through the provider) or
``security`` (security events only).
"""

OTEL_PYTHON_AUDIT_REDACTION_TIER2: Final = "OTEL_PYTHON_AUDIT_REDACTION_TIER2"
"""
.. envvar:: OTEL_PYTHON_AUDIT_REDACTION_TIER2

Tier-2 redaction on the export thread: ``off`` (default), ``presidio`` (Presidio pattern
recognizers, no NER) or ``presidio-ner`` (adds names and locations through a spaCy pipeline).
"""

OTEL_PYTHON_AUDIT_SPACY_MODEL: Final = "OTEL_PYTHON_AUDIT_SPACY_MODEL"
"""
.. envvar:: OTEL_PYTHON_AUDIT_SPACY_MODEL

Name of an installed spaCy pipeline for ``presidio-ner`` (default ``en_core_web_sm``).
Nothing is downloaded: a missing pipeline fails start-up.
"""

OTEL_PYTHON_AUDIT_MASK_CLIENT_IP: Final = "OTEL_PYTHON_AUDIT_MASK_CLIENT_IP"
"""
.. envvar:: OTEL_PYTHON_AUDIT_MASK_CLIENT_IP

``false`` (default: security logs need source addresses) or ``true`` to pseudonymise
``client.address`` and IP addresses in free text.
"""

OTEL_PYTHON_AUDIT_HMAC_KEY: Final = "OTEL_PYTHON_AUDIT_HMAC_KEY"
"""
.. envvar:: OTEL_PYTHON_AUDIT_HMAC_KEY

Secret key for keyed pseudonyms (``hmac:<key id>:<hex>``) and the integrity chain, given
as ``base64:<data>``, ``hex:<data>`` or plain text (at least 16 bytes). Without it,
pseudonymised values are removed instead and integrity fields carry no HMAC.
"""

OTEL_PYTHON_AUDIT_HMAC_KEY_ID: Final = "OTEL_PYTHON_AUDIT_HMAC_KEY_ID"
"""
.. envvar:: OTEL_PYTHON_AUDIT_HMAC_KEY_ID

Short identifier of the key above, written beside every HMAC so keys can rotate
(``[A-Za-z0-9_.-]{1,32}``, default ``k1``).
"""

OTEL_PYTHON_AUDIT_DELIVERY: Final = "OTEL_PYTHON_AUDIT_DELIVERY"
"""
.. envvar:: OTEL_PYTHON_AUDIT_DELIVERY

How security events are exported: ``durable`` (default: bounded queue, spill to disk,
replay) or ``batch`` (the SDK's BatchLogRecordProcessor, which may drop).
"""

OTEL_PYTHON_AUDIT_SPOOL_DIR: Final = "OTEL_PYTHON_AUDIT_SPOOL_DIR"
"""
.. envvar:: OTEL_PYTHON_AUDIT_SPOOL_DIR

Directory of the on-disk spool for security events. Default
``$XDG_STATE_HOME/otel-audit/<service.name>`` (``~/.local/state/…``).
"""

OTEL_PYTHON_AUDIT_SPOOL_MAX_BYTES: Final = "OTEL_PYTHON_AUDIT_SPOOL_MAX_BYTES"
"""
.. envvar:: OTEL_PYTHON_AUDIT_SPOOL_MAX_BYTES

Upper bound of the spool on disk, in bytes (default 268435456, 256 MiB).
"""

OTEL_PYTHON_AUDIT_QUEUE_SIZE: Final = "OTEL_PYTHON_AUDIT_QUEUE_SIZE"
"""
.. envvar:: OTEL_PYTHON_AUDIT_QUEUE_SIZE

Security events held in memory before spilling to disk (default 8192).
"""

OTEL_PYTHON_AUDIT_OVERFLOW: Final = "OTEL_PYTHON_AUDIT_OVERFLOW"
"""
.. envvar:: OTEL_PYTHON_AUDIT_OVERFLOW

What happens when memory and spool are both full: ``block`` (default: the caller waits up
to ``OTEL_PYTHON_AUDIT_BLOCK_TIMEOUT_MS``, then the event goes to the last-resort file) or
``drop`` (counted, written to the last-resort file).
"""

OTEL_PYTHON_AUDIT_BLOCK_TIMEOUT_MS: Final = "OTEL_PYTHON_AUDIT_BLOCK_TIMEOUT_MS"
"""
.. envvar:: OTEL_PYTHON_AUDIT_BLOCK_TIMEOUT_MS

Longest wait of a logging call under the ``block`` policy, in milliseconds (default 1000).
"""

OTEL_PYTHON_AUDIT_LAST_RESORT: Final = "OTEL_PYTHON_AUDIT_LAST_RESORT"
"""
.. envvar:: OTEL_PYTHON_AUDIT_LAST_RESORT

Where an event that could be neither delivered nor spooled is written, redacted:
``stderr`` (default) or a file path.
"""

OTEL_PYTHON_AUDIT_INTEGRITY: Final = "OTEL_PYTHON_AUDIT_INTEGRITY"
"""
.. envvar:: OTEL_PYTHON_AUDIT_INTEGRITY

``true`` (default) or ``false``: add the tamper-evidence chain (sequence, previous digest,
HMAC) to every security event.
"""

OTEL_PYTHON_AUDIT_CHECKPOINT_INTERVAL: Final = "OTEL_PYTHON_AUDIT_CHECKPOINT_INTERVAL"
"""
.. envvar:: OTEL_PYTHON_AUDIT_CHECKPOINT_INTERVAL

Emit a signed checkpoint event after this many chained events (default 1000, ``0`` = never).
"""

OTEL_PYTHON_AUDIT_TRUSTED_PROXIES: Final = "OTEL_PYTHON_AUDIT_TRUSTED_PROXIES"
"""
.. envvar:: OTEL_PYTHON_AUDIT_TRUSTED_PROXIES

Comma-separated CIDR list of proxies whose ``Forwarded``/``X-Forwarded-For`` headers are
believed (default empty: the peer address is the client).
"""

OTEL_PYTHON_AUDIT_REQUEST_ID_HEADER: Final = "OTEL_PYTHON_AUDIT_REQUEST_ID_HEADER"
"""
.. envvar:: OTEL_PYTHON_AUDIT_REQUEST_ID_HEADER

Incoming header that carries the request id (default ``X-Request-ID``).
"""

OTEL_PYTHON_AUDIT_HTTP_EVENTS: Final = "OTEL_PYTHON_AUDIT_HTTP_EVENTS"
"""
.. envvar:: OTEL_PYTHON_AUDIT_HTTP_EVENTS

Comma-separated automatic events of the web middleware: any of ``denied`` (401/403),
``rate_limited`` (429), ``server_error`` (5xx on sensitive routes); ``none`` for none.
Default ``denied,rate_limited,server_error``.
"""

OTEL_PYTHON_AUDIT_SENSITIVE_ROUTES: Final = "OTEL_PYTHON_AUDIT_SENSITIVE_ROUTES"
"""
.. envvar:: OTEL_PYTHON_AUDIT_SENSITIVE_ROUTES

Comma-separated glob patterns of paths whose 5xx answers are security events
(default ``/login*,/logout*,/auth/*,/admin/*,/api/keys*,/account/*``).
"""

OTEL_PYTHON_AUDIT_DETECTIONS: Final = "OTEL_PYTHON_AUDIT_DETECTIONS"
"""
.. envvar:: OTEL_PYTHON_AUDIT_DETECTIONS

``false`` (default) or ``true``: run the in-process anomaly detections (brute force,
credential stuffing, privilege escalation, unusual data access).
"""

OTEL_PYTHON_AUDIT_DEFER_EVENTS: Final = "OTEL_PYTHON_AUDIT_DEFER_EVENTS"
"""
.. envvar:: OTEL_PYTHON_AUDIT_DEFER_EVENTS

``true`` (default) or ``false``: ``security_event()``, the web middleware's automatic
events and records of the stdlib bridge capture the call (timestamp, span, request
context; a stdlib record's message and ``extra=`` values) on the application's thread
and are processed on a background thread, in call order, after the response has gone. A full queue
(``OTEL_PYTHON_AUDIT_QUEUE_SIZE``) or a closed pipeline builds it on the caller's thread
instead; nothing is dropped. ``LoggerProvider.force_flush()`` runs what is pending.
"""

OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD: Final = "OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD"
"""
.. envvar:: OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD

Authentication failures for one account or one client address within the window that
raise a brute-force alert (default 5).
"""

OTEL_PYTHON_AUDIT_STUFFING_THRESHOLD: Final = "OTEL_PYTHON_AUDIT_STUFFING_THRESHOLD"
"""
.. envvar:: OTEL_PYTHON_AUDIT_STUFFING_THRESHOLD

Distinct accounts failing from one client address within the window that raise a
credential-stuffing alert (default 10).
"""

OTEL_PYTHON_AUDIT_DETECTION_WINDOW_S: Final = "OTEL_PYTHON_AUDIT_DETECTION_WINDOW_S"
"""
.. envvar:: OTEL_PYTHON_AUDIT_DETECTION_WINDOW_S

Sliding window of the detections, in seconds (default 300).
"""

OTEL_PYTHON_AUDIT_EXPORT_THRESHOLD: Final = "OTEL_PYTHON_AUDIT_EXPORT_THRESHOLD"
"""
.. envvar:: OTEL_PYTHON_AUDIT_EXPORT_THRESHOLD

Records exported by one actor within the window above which an unusual-access alert is
raised (default 10000).
"""

OTEL_PYTHON_AUDIT_ADMIN_ROLES: Final = "OTEL_PYTHON_AUDIT_ADMIN_ROLES"
"""
.. envvar:: OTEL_PYTHON_AUDIT_ADMIN_ROLES

Comma-separated role names that count as admin-level for the privilege-escalation
detection (default ``admin,root,superuser,owner``).
"""
