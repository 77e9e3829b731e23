"""
Sensitive key names: case- and separator-insensitive, without eating metadata.

The vocabulary is the union of Sentry's ``DEFAULT_DENYLIST`` (sentry_sdk/scrubber.py)
and Logfire's ``DEFAULT_PATTERNS`` (logfire/_internal/scrubbing.py), plus the obvious
gaps (pin, otp, cvv, client secret, connection string). A key is split into words at
separators and camelCase humps (``X-Api-Key``, ``db.password``, ``clientSecret``), and it is
sensitive when a *suffix* of its words spells a sensitive name, optionally followed by
words that still denote the value itself (``password_hash``, ``token_value``). So
``http.request.header.authorization`` and ``AWS_SECRET_ACCESS_KEY`` match, while
``token_expires_at``, ``password_changed`` and ``secret_name`` (metadata *about* the
secret) survive. Logfire's substring match would have destroyed them; Sentry's
exact match would have missed ``db.password``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from otel_audit import semconv
from otel_audit.redaction._actions import Action

_WORDS: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@dataclass(frozen=True, slots=True)
class KeyRule:
    """A family of sensitive names sharing a rule id and an action."""

    rule_id: str
    names: frozenset[str]
    action: Action = Action.PLACEHOLDER
    strict_only: bool = False


def _names(*names: str) -> frozenset[str]:
    return frozenset(names)


KEY_RULES: Final[tuple[KeyRule, ...]] = (
    KeyRule(
        "key.password",
        _names(
            "password",
            "passwd",
            "pwd",
            "passphrase",
            "passcode",
            "mysqlpwd",
            "userpass",
            "dbpass",
            "pgpassword",
        ),
    ),
    KeyRule(
        "key.secret",
        _names(
            "secret",
            "secrets",
            "clientsecret",
            "secretkey",
            "appsecret",
            "webhooksecret",
            "sharedsecret",
            "consumersecret",
            "secrettoken",
        ),
    ),
    KeyRule(
        "key.token",
        _names(
            "token",
            "accesstoken",
            "refreshtoken",
            "idtoken",
            "authtoken",
            "bearertoken",
            "apitoken",
            "csrftoken",
            "xcsrftoken",
            "csrf",
            "xcsrf",
            "xsrf",
            "xsrftoken",
            "csrfmiddlewaretoken",
            "jwt",
            "oauthtoken",
            "sessiontoken",
            "securitytoken",
            "xamzsecuritytoken",
            "logfiretoken",
            "githubtoken",
            "npmtoken",
            "slacktoken",
        ),
    ),
    KeyRule(
        "key.api_key",
        _names(
            "apikey",
            "xapikey",
            "accesskey",
            "secretaccesskey",
            "privatekey",
            "signingkey",
            "encryptionkey",
            "masterkey",
            "accountkey",
            "sharedaccesskey",
            "clientkey",
            "subscriptionkey",
            "licensekey",
            "serviceaccountkey",
            "ocpapimsubscriptionkey",
        ),
    ),
    KeyRule(
        "key.authorization",
        _names("authorization", "proxyauthorization", "auth", "xauth", "wwwauthenticate"),
    ),
    KeyRule(
        "key.credential",
        _names(
            "credential",
            "credentials",
            "creds",
            "xamzcredential",
            "connectionstring",
            "connstr",
            "dsn",
            "databaseurl",
            "dburl",
        ),
    ),
    KeyRule(
        "key.cookie",
        _names("cookie", "cookies", "setcookie", "phpsessid", "connectsid", "symfony"),
    ),
    # Sessions are join keys for investigators: pseudonymised, not removed.
    KeyRule(
        "key.session",
        _names(
            "session",
            "sessionid",
            "sessid",
            "sessionkey",
            "usersession",
            "aiohttpsession",
            "jsessionid",
            "aspnetsessionid",
        ),
        action=Action.PSEUDONYMIZE,
    ),
    KeyRule(
        "key.pii",
        _names(
            "ssn",
            "socialsecurity",
            "socialsecuritynumber",
            "creditcard",
            "creditcardnumber",
            "cardnumber",
            "ccnumber",
            "cvv",
            "cvv2",
            "cvc",
            "cvc2",
            "pin",
            "otp",
            "totp",
            "mfacode",
            "otpcode",
            "verificationcode",
            "securitycode",
            "taxid",
        ),
    ),
    KeyRule(
        "key.signature",
        _names("signature", "sig", "xamzsignature", "xgoogsignature", "hmac"),
        strict_only=True,
    ),
    KeyRule("key.generic", _names("key", "code", "hash", "salt"), strict_only=True),
)

IP_RULE: Final = KeyRule(
    "key.ip",
    _names("ipaddress", "remoteaddr", "xforwardedfor", "xrealip", "clientip", "sourceip"),
    action=Action.PSEUDONYMIZE,
)
"""Sentry's address names: only applied when ``mask_client_ip`` is on."""

# Trailing words after a sensitive name that still denote the secret itself.
_VALUE_WORDS: Final = frozenset(
    {
        "value",
        "val",
        "str",
        "string",
        "raw",
        "plain",
        "plaintext",
        "clear",
        "cleartext",
        "hash",
        "hashed",
        "b64",
        "base64",
        "hex",
        "enc",
        "encrypted",
        "header",
        "data",
        "text",
        "input",
        "field",
        "param",
        "cookie",
        "1",
        "2",
        "new",
        "old",
        "confirm",
        "confirmation",
        "again",
        "current",
        "tmp",
        "temp",
    }
)

# Keys whose values are never touched: join keys and our own metadata. Not exempt, because
# a secret can ride in them: url.path (reset and magic-link tokens, emails as path
# segments, a query string logged as part of the path), the client-chosen
# user_agent.original and audit.request.id (X-Request-ID), and event.* beyond the ECS
# fields we write (event.original holds the raw event). Scanning leaves ordinary paths,
# agents and ids intact: the detectors do not fire on UUIDs, digests or versions.
EXEMPT_KEYS: Final = frozenset(
    {
        semconv.AUDIT_EVENT_NAME,
        semconv.EVENT_ID,
        semconv.EVENT_CATEGORY,
        semconv.EVENT_TYPE,
        semconv.EVENT_ACTION,
        semconv.EVENT_OUTCOME,
        semconv.AUDIT_CATEGORY,
        semconv.AUDIT_OCSF_CLASS_UID,
        semconv.AUDIT_OCSF_CATEGORY_UID,
        semconv.AUDIT_OCSF_ACTIVITY_ID,
        semconv.AUDIT_RECORD_COUNT,
        semconv.AUDIT_REDACTION,
        semconv.HTTP_ROUTE,
        semconv.HTTP_REQUEST_METHOD,
        semconv.HTTP_RESPONSE_STATUS_CODE,
        semconv.USER_ID,
        semconv.USER_ROLES,
        semconv.CLIENT_PORT,
        semconv.OTEL_EVENT_NAME,
        *semconv.INTEGRITY_KEYS,
        "exception.type",
        "trace_id",
        "span_id",
        "trace_flags",
        "otelTraceID",
        "otelSpanID",
        "otelTraceSampled",
        "otelServiceName",
        "trace.id",
        "span.id",
        "code.filepath",
        "code.function",
        "code.lineno",
        "code.file.path",
        "code.function.name",
        "code.line.number",
        "thread.id",
        "thread.name",
        "process.pid",
        "logger.name",
        "log.logger",
        "service.name",
    }
)
# audit.* fields that are scanned although they live in our namespace: free text, and
# the request id a client chose.
SCANNED_AUDIT_KEYS: Final = frozenset({semconv.AUDIT_REASON, semconv.AUDIT_REQUEST_ID})


# Every audit.* key that otel-audit itself defines is metadata it wrote; an unknown
# audit.* key (an application's extra) is scanned like any other.
_SEMCONV_AUDIT_KEYS: Final = frozenset(
    value
    for name, value in vars(semconv).items()
    if name.isupper()
    and isinstance(value, str)
    and value.startswith(semconv.AUDIT_SCOPE_PREFIX)
    and value not in SCANNED_AUDIT_KEYS
    and value not in {semconv.AUDIT_TARGET, semconv.AUDIT_SCOPE_PREFIX}
)


def split_words(key: str) -> list[str]:
    """``X-Api-Key`` -> ``['x', 'api', 'key']``; ``clientSecret`` -> ``['client', 'secret']``."""
    return [w.lower() for w in _WORDS.findall(key)]


class KeyClassifier:
    """
    Decides, once per distinct key, whether a key name makes its value sensitive.

    The verdict is cached in a bounded dict: attribute keys repeat endlessly, so the
    steady-state cost is one dict lookup.

    Args:
        strict: include the strict-only families (bare ``key``, ``signature``…).
        mask_client_ip: include the address names (``remote_addr``, ``x_forwarded_for``).
    """

    _CACHE_MAX: Final = 4096

    def __init__(self, *, strict: bool, mask_client_ip: bool) -> None:
        table: dict[str, KeyRule] = {}
        rules = [r for r in KEY_RULES if strict or not r.strict_only]
        if mask_client_ip:
            rules.append(IP_RULE)
        for rule in rules:
            for name in rule.names:
                table.setdefault(name, rule)
        self._table = table
        self._mask_client_ip = mask_client_ip
        self.verdicts: dict[str, KeyRule | object | None] = {}
        """The cache behind :meth:`plan`; read it directly on a hot path, never write it."""

    def exempt(self, key: str) -> bool:
        """Keys whose values are kept verbatim (ids, routes, our own metadata)."""
        if key == semconv.CLIENT_ADDRESS:
            return not self._mask_client_ip
        if key in EXEMPT_KEYS:
            return True
        return key in _SEMCONV_AUDIT_KEYS

    def classify(self, key: str) -> KeyRule | None:
        """The rule a key name falls under, or ``None``."""
        plan = self.plan(key)
        return None if plan is EXEMPT else plan  # type: ignore[return-value]

    def plan(self, key: str) -> KeyRule | object | None:
        """
        One cached verdict per key: :data:`EXEMPT`, the :class:`KeyRule`, or ``None``.

        Returns:
            ``EXEMPT`` (keep verbatim), a rule (replace the whole value) or ``None``
            (scan the value's content).
        """
        cached = self.verdicts.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        plan: KeyRule | object | None = EXEMPT if self.exempt(key) else self._classify(key)
        if len(self.verdicts) >= self._CACHE_MAX:
            self.verdicts.clear()
        self.verdicts[key] = plan
        return plan

    def _classify(self, key: str) -> KeyRule | None:
        if key == semconv.CLIENT_ADDRESS and self._mask_client_ip:
            return IP_RULE
        words = split_words(key)
        if not words:
            return None
        # Strip trailing words that still name the value (password_hash, token_value).
        end = len(words)
        candidates = [end]
        while end > 1 and words[end - 1] in _VALUE_WORDS:
            end -= 1
            candidates.append(end)
        for stop in candidates:
            compact = ""
            for start in range(stop - 1, -1, -1):
                compact = words[start] + compact
                rule = self._table.get(compact)
                if rule is not None:
                    return rule
        return None


_MISSING: Final = object()
EXEMPT: Final = object()
"""Verdict of :meth:`KeyClassifier.plan` for keys whose values are kept verbatim."""
