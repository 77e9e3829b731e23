"""
Checksums and shape tests that turn a weak pattern into a confident one.

Each function answers "is this really one?" for a candidate the regular expression found.
They are cheap (they only run after the prefilter and the pattern both fired) and they
are where the hard negatives are decided: trace ids, UUIDs, digests, timestamps.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from typing import Final

from otel_audit.redaction._actions import is_redaction_output

_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_VERSION: Final = re.compile(r"v?\d+(?:\.\d+){1,3}(?:[-+.][0-9A-Za-z.]+)?")
_ENV_NAME: Final = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_TEMPLATE: Final = re.compile(
    r"(?:\$\{[^}]*\}|\{\{[^}]*\}\}|%\(?\w*\)?[sd]|<[A-Za-z_]+>|\$[A-Z_]+)"
)

_NON_VALUES: Final = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "undefined",
        "true",
        "false",
        "redacted",
        "[redacted]",
        "<redacted>",
        "[filtered]",
        "***",
        "****",
        "*****",
        "******",
        "********",
        "xxx",
        "xxxx",
        "...",
        "''",
        '""',
    }
)

# Issuer identification numbers of the card brands, with their lengths (ISO/IEC 7812).
_CARD_PREFIXES: Final = (
    ("4", (13, 16, 19)),  # Visa
    ("34", (15,)),  # American Express
    ("37", (15,)),
    ("36", (14,)),  # Diners Club
    ("38", (14,)),
    ("30", (14, 16)),
    ("35", (16, 17, 18, 19)),  # JCB
    ("62", (16, 17, 18, 19)),  # UnionPay
    ("6011", (16, 19)),  # Discover
    ("64", (16, 19)),
    ("65", (16, 19)),
    *((str(p), (16,)) for p in range(51, 56)),  # Mastercard 51-55
    *((str(p), (16,)) for p in range(2221, 2721)),  # Mastercard 2-series
)
# Indexed by prefix once: a linear scan of the 520 prefixes cost 40 µs per rejected
# candidate, and every digit run in a UUID or digest is a candidate.
_CARD_LENGTHS: Final = {prefix: frozenset(lengths) for prefix, lengths in _CARD_PREFIXES}
_CARD_PREFIX_SIZES: Final = tuple(sorted({len(prefix) for prefix in _CARD_LENGTHS}))


def luhn(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:  # noqa: PLR2004 - the Luhn rule
                value -= 9
        total += value
    return total % 10 == 0


def card_number(candidate: str) -> bool:
    """A Luhn-valid number of a known brand's prefix and length; one kind of separator."""
    if " " in candidate and "-" in candidate:
        return False
    digits = candidate.replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()):
        return False
    length = len(digits)
    for size in _CARD_PREFIX_SIZES:
        lengths = _CARD_LENGTHS.get(digits[:size])
        if lengths is not None and length in lengths:
            # 4111… yes, 0000… no
            return digits.count(digits[0]) != length and luhn(digits)
    return False


def iban(candidate: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN, spaces allowed."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:  # noqa: PLR2004 - shortest (NO) and longest IBAN
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value`` under its own character distribution."""
    if not value:
        return 0.0
    length = len(value)
    return -sum(n / length * math.log2(n / length) for n in Counter(value).values())


def looks_like_identifier(value: str) -> bool:
    """
    Hex digests, trace/span ids, UUIDs and version strings: never secrets by shape alone.

    Keeps investigators' join keys: a 32-hex trace id, a 40-hex commit SHA or a sha256
    digest has high entropy and would otherwise trip every entropy rule.
    """
    stripped = value.strip("\"'")
    for prefix in ("sha256:", "sha1:", "sha512:", "md5:"):
        if stripped.lower().startswith(prefix):
            stripped = stripped[len(prefix) :]
    return bool(
        _HEX.fullmatch(stripped) or _UUID.fullmatch(stripped) or _VERSION.fullmatch(stripped)
    )


def high_entropy_secret(value: str, *, min_length: int = 16, min_entropy: float = 3.2) -> bool:
    """
    A token that is plausibly a generated secret.

    Needs letters and digits, enough length and entropy, and must not be an identifier
    (see :func:`looks_like_identifier`) or a path.
    """
    if len(value) < min_length or looks_like_identifier(value):
        return False
    if not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return False
    if value.count("/") > 1 and "." in value:  # a path or URL path, not a key
        return False
    return shannon_entropy(value) >= min_entropy


def non_value(value: str) -> bool:
    """Placeholders, empties and templates that a ``password=`` pair may carry harmlessly."""
    lowered = value.strip().lower()
    if lowered in _NON_VALUES or is_redaction_output(value):
        return True
    return bool(_TEMPLATE.fullmatch(value.strip()))


def env_name(value: str) -> bool:
    """``DATABASE_URL``-like names, which messages mention without the value."""
    return bool(_ENV_NAME.fullmatch(value))


def _b64decode(part: str) -> bytes | None:
    padded = part + "=" * (-len(part) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError):
        return None


def jwt_header(token: str) -> bool:
    """The first segment is base64url of a JSON object (as detect-secrets checks)."""
    decoded = _b64decode(token.split(".", 1)[0])
    if decoded is None:
        return False
    try:
        return isinstance(json.loads(decoded.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def basic_credentials(value: str) -> bool:
    """base64 of ``user:password`` (so ``Basic authentication`` is left alone)."""
    padded = value + "=" * (-len(value) % 4)
    try:
        decoded = base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return ":" in text and text.isprintable()


def ssn(candidate: str) -> bool:
    """US SSN ranges: area not 000/666/9xx, group not 00, serial not 0000."""
    digits = candidate.replace("-", "").replace(" ", "")
    if len(digits) != 9 or not digits.isdigit():  # noqa: PLR2004 - SSNs have nine digits
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in {"000", "666"} or area.startswith("9"):
        return False
    if group == "00" or serial == "0000":
        return False
    return len(set(digits)) > 1


def phone(candidate: str) -> bool:
    """Eight to fifteen digits (E.164 bounds), not a date, time, version or address."""
    digits = [c for c in candidate if c.isdigit()]
    if not 8 <= len(digits) <= 15:  # noqa: PLR2004 - E.164 bounds
        return False
    if candidate.count(".") >= 2 and "+" not in candidate:  # noqa: PLR2004 - IPs, versions
        return False
    return ":" not in candidate


def email_not_userinfo(match: re.Match[str]) -> bool:
    """Reject ``user:password@host`` inside a URL: that is the URL rule's, with the host kept."""
    text, start = match.string, match.start()
    scheme = text.rfind("://", max(0, start - 256), start)
    return scheme < 0 or any(c.isspace() for c in text[scheme:start])


def ipv4(candidate: str) -> bool:
    """Four octets in range."""
    parts = candidate.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts)  # noqa: PLR2004
