"""Type stub for the native module (native/re2hold/src/otel_audit_re2hold.cc)."""

from collections.abc import Iterable

class Set:
    """Unanchored RE2 patterns matched at once; the GIL is kept for texts under 64 KiB."""

    def __init__(self, patterns: Iterable[str], max_mem: int = ...) -> None: ...
    def match(self, text: str) -> list[int]:
        """Indexes of the patterns found in ``text``, in no order."""

    def pattern_count(self) -> int:
        """How many patterns the set holds."""
