"""
What happens to a value once a rule has matched it.

Every output is built from the rule id, a key id and a keyed digest, never from the
matched text itself (the one exception is the card mask, which keeps the last four digits
that PCI DSS allows to be displayed). A pseudonym needs a key: without one it degrades to
the typed placeholder rather than to an unkeyed hash, which a dictionary attack would undo.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from typing import Final

PLACEHOLDER_PREFIX: Final = "[REDACTED:"
PSEUDONYM_PREFIX: Final = "hmac:"
_DIGEST_HEX_CHARS: Final = 32  # 128 bits: collisions are irrelevant at log volumes
_MASK_KEEP: Final = 4


class Action(enum.Enum):
    """
    How a matched value is rewritten.

    ``REMOVE`` drops an attribute or map entry (and cuts a span out of text);
    ``PLACEHOLDER`` writes ``[REDACTED:<rule id>]``; ``MASK`` keeps only the last four
    characters of a card number; ``PSEUDONYMIZE`` writes ``hmac:<key id>:<hex>`` so that
    investigators can still join on the value.
    """

    REMOVE = "remove"
    PLACEHOLDER = "placeholder"
    MASK = "mask"
    PSEUDONYMIZE = "pseudonymize"


def placeholder(rule_id: str) -> str:
    """The typed placeholder for ``rule_id``."""
    return f"{PLACEHOLDER_PREFIX}{rule_id}]"


class Renderer:
    """Turns (rule, action, secret) into the replacement text; owns the HMAC key."""

    __slots__ = ("_key", "_key_id")

    def __init__(self, key: bytes | None, key_id: str) -> None:
        self._key = key
        self._key_id = key_id

    def pseudonym(self, value: str) -> str | None:
        """``hmac:<key id>:<hex>`` of ``value``, or ``None`` without a key."""
        if self._key is None:
            return None
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"{PSEUDONYM_PREFIX}{self._key_id}:{digest.hexdigest()[:_DIGEST_HEX_CHARS]}"

    def render(self, rule_id: str, action: Action, secret: str) -> str:
        """
        The text that replaces ``secret``.

        Args:
            rule_id: the rule that matched; the only thing a placeholder reveals.
            action: what to do with the match.
            secret: the matched text, used only as HMAC input or for the card mask.

        Returns:
            The replacement; ``""`` for ``REMOVE``.
        """
        if action is Action.REMOVE:
            return ""
        if action is Action.PSEUDONYMIZE:
            pseudo = self.pseudonym(secret.strip().lower())
            return placeholder(rule_id) if pseudo is None else pseudo
        if action is Action.MASK:
            digits = [c for c in secret if c.isdigit()]
            if len(digits) >= 12:  # noqa: PLR2004 - only card-length values keep a tail
                return f"{PLACEHOLDER_PREFIX}{rule_id}:****{''.join(digits[-_MASK_KEEP:])}]"
            return placeholder(rule_id)
        return placeholder(rule_id)


def is_redaction_output(value: str) -> bool:
    """Whether ``value`` is already one of our placeholders, so scanning it again is moot."""
    return value.startswith((PLACEHOLDER_PREFIX, PSEUDONYM_PREFIX, "<truncated", "<cycle>"))
