"""Time-sortable unique event ids (UUIDv7, RFC 9562).

Python 3.11 has no ``uuid.uuid7``. Ids must sort by creation time so that a SIEM can
order and de-duplicate at-least-once deliveries; within one millisecond a counter in the
random bits keeps them monotonic per process.
"""

from __future__ import annotations

import os
import random
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_seq = 0
_MAX_SEQ = 0xFFF


def _reset_after_fork() -> None:
    global _lock, _last_ms, _seq  # noqa: PLW0603  # module state is re-created in the child
    _lock = threading.Lock()
    _last_ms = 0
    _seq = 0


os.register_at_fork(after_in_child=_reset_after_fork)


def new_event_id() -> str:
    """A UUIDv7 string: 48-bit Unix milliseconds, 12-bit sequence, 62 random bits."""
    global _last_ms, _seq  # noqa: PLW0603  # one monotonic clock per process
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms <= _last_ms:
            _seq += 1
            if _seq > _MAX_SEQ:  # more than 4096 ids in one ms: borrow the next ms
                _last_ms += 1
                _seq = 0
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _seq = random.getrandbits(10)  # start low, room to count
        seq = _seq
    # Uniqueness, not secrecy: `random` is reseeded in a forked child, and is 20x cheaper
    # than os.urandom, which matters on the logging hot path.
    rand = random.getrandbits(62)
    value = (now_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    text = value.to_bytes(16, "big").hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
