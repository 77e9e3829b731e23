"""Event ids: UUIDv7 layout, order, and no repeats across fork()."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid

from otel_audit._ids import new_event_id

FORK_SCRIPT = textwrap.dedent(
    """
    import os
    from otel_audit._ids import new_event_id

    new_event_id()  # parent state exists before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, "\\n".join(new_event_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    mine = {new_event_id() for _ in range(100)}
    child = set(os.read(read, 1 << 16).decode().split())
    os.waitpid(pid, 0)
    print(len(child), len(mine & child))
    """
)


class TestEventIds:
    def test_layout(self):
        """An id is a version-7, RFC 4122-variant UUID whose time is now."""
        before = time.time_ns() // 1_000_000
        parsed = uuid.UUID(new_event_id())
        after = time.time_ns() // 1_000_000
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after

    def test_unique_and_ordered(self):
        """Ids never repeat and sort in emission order, also within one millisecond."""
        ids = [new_event_id() for _ in range(20_000)]
        assert len(set(ids)) == len(ids)
        assert ids == sorted(ids)

    def test_forked_child_does_not_repeat_parent_ids(self):
        """A forked child draws a fresh base, so parent and child ids never collide."""
        result = subprocess.run(
            [sys.executable, "-c", FORK_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        child_count, overlap = map(int, result.stdout.split())
        assert child_count == 100
        assert overlap == 0
