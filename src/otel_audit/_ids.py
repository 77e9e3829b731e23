"""
Time-sortable unique event ids (UUIDv7, RFC 9562).

Python 3.11 has no ``uuid.uuid7``. Ids must sort by creation time so that a SIEM can order
and de-duplicate at-least-once deliveries. This runs on the logging hot path, so it takes
no lock and draws no random number per id: the 62 "random" bits are a per-process random
base plus an atomic counter. Within a process ids are therefore unique and increase with
emission order (also within one millisecond); across processes they collide only if two
random 62-bit bases come within the number of ids emitted, which is negligible. A forked
child draws a new base, so it never repeats its parent's ids.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time

_MASK62 = (1 << 62) - 1
_MASK48 = (1 << 48) - 1
_VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62

_counter = itertools.count()
_base = secrets.randbits(62)


def _reseed() -> None:
    global _counter, _base  # noqa: PLW0603  # per-process state, re-drawn in a forked child
    _counter = itertools.count()
    _base = secrets.randbits(62)


os.register_at_fork(after_in_child=_reseed)


def new_event_id() -> str:
    """A UUIDv7 string: 48-bit Unix milliseconds, then a per-process counter-based tail."""
    tail = (_base + next(_counter)) & _MASK62
    value = (time.time_ns() // 1_000_000 & _MASK48) << 80 | _VERSION_AND_VARIANT | tail
    text = value.to_bytes(16, "big").hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
