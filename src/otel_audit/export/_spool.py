"""
The on-disk spool: append-only, checksummed segments of encoded OTLP requests.

Why a write-ahead spool rather than "spill only on failure": every prepared batch is
appended here before the first send attempt, and the sender only ever reads from here.
That gives three properties for the price of one sequential ``write(2)`` per batch
(page cache, no ``fsync`` on the hot path):

* **Order.** One FIFO per process; a failed batch can never be overtaken by a newer one,
  so the integrity chain arrives in sequence order.
* **Crash safety.** A ``SIGKILL`` loses only what had not yet reached the spool: the
  in-memory queue plus the batch being prepared (see ``DurableLogRecordProcessor``).
* **Replay for free.** A restarted process adopts the directory of a dead one and sends
  what is left, oldest first.

Layout under the spool root::

    <root>/p<pid>-<rand>/lock          flock()ed by the owning process while it lives
    <root>/p<pid>-<rand>/000000000001.seg
    <root>/p<pid>-<rand>/000000000001.ack   8-byte offset of the first unsent entry
    <root>/dead/<dir>.seg, <dir>.log        dead letters (permanently refused) + reasons
    <root>/stats/<dir>.json                 last counters written by that process

Entry format (little-endian): ``b"OAS1"``, payload length (u32), record count (u32),
CRC-32 of count+payload (u32), then the payload (a serialized
``ExportLogsServiceRequest``). A torn or corrupt entry is skipped up to the next magic
and its records counted as ``dropped{reason="spool_corrupt"}``.

Durability (the fsync policy): every append is one ``write(2)``, so a process crash loses
nothing that was appended. ``fsync`` runs at most every ``fsync_interval_s`` seconds
(default 1 s) during appends, on every segment roll, on ``flush()`` and on ``close()``,
so an operating-system crash or power loss can lose up to that interval of appends.
Acknowledgement offsets are not fsynced: after a power loss some entries are sent again,
which at-least-once delivery with ``event.id`` allows.

Bounds: ``max_bytes`` caps everything under the root (all processes' directories and the
dead letters), measured by a directory scan at open and at every segment roll, plus this
process's own appends in between; concurrent processes can overshoot it by at most one
segment each.

Fork: each process owns its own directory through an ``flock``; a forked child closes the
inherited descriptors (without unlocking, which would release the parent's lock) and
opens a fresh directory, so parent and child never write the same file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MAGIC: Final = b"OAS1"
_HEADER: Final = struct.Struct("<4sIII")
HEADER_SIZE: Final = _HEADER.size
_ACK: Final = struct.Struct("<Q")
_MAX_PAYLOAD: Final = 1 << 30
DEFAULT_SEGMENT_BYTES: Final = 8 * 1024 * 1024
DEAD_DIR: Final = "dead"
STATS_DIR: Final = "stats"
_ADOPT_INTERVAL_S: Final = 30.0


def encode_entry(payload: bytes, count: int) -> bytes:
    """One spool entry: header + payload."""
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<I", count)))
    return _HEADER.pack(MAGIC, len(payload), count, crc) + payload


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One entry read back from a segment, with where it came from (for ``ack``)."""

    segment: Path
    offset: int
    end: int
    count: int
    payload: bytes
    adopted: bool


@dataclass(frozen=True, slots=True)
class ReadResult:
    """An entry, or how many records were lost to corruption while looking for one."""

    entry: SpoolEntry | None
    corrupt_records: int = 0


def read_entries(path: Path, start: int = 0) -> list[tuple[int, int, int, bytes | None]]:
    """
    Every entry of a segment file as ``(offset, end, count, payload or None if corrupt)``.

    Used by the CLI and tests; the spool itself reads one entry at a time.
    """
    data = path.read_bytes()
    out: list[tuple[int, int, int, bytes | None]] = []
    pos = start
    while pos + HEADER_SIZE <= len(data):
        magic, length, count, crc = _HEADER.unpack_from(data, pos)
        end = pos + HEADER_SIZE + length
        if magic != MAGIC or length > _MAX_PAYLOAD or end > len(data):
            nxt = data.find(MAGIC, pos + 1)
            out.append((pos, nxt if nxt >= 0 else len(data), 0, None))
            if nxt < 0:
                break
            pos = nxt
            continue
        payload = data[pos + HEADER_SIZE : end]
        ok = zlib.crc32(payload, zlib.crc32(struct.pack("<I", count))) == crc
        out.append((pos, end, count, payload if ok else None))
        pos = end
    return out


def _dir_usage(root: Path) -> int:
    total = 0
    try:
        children = list(os.scandir(root))
    except OSError:
        return 0
    for child in children:
        try:
            if child.is_dir(follow_symlinks=False):
                for item in os.scandir(child.path):
                    if item.is_file(follow_symlinks=False):
                        total += item.stat(follow_symlinks=False).st_size
            elif child.is_file(follow_symlinks=False):
                total += child.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def _segments(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".seg")
    except OSError:
        return []


def _read_ack(segment: Path) -> int:
    try:
        raw = segment.with_suffix(".ack").read_bytes()
    except OSError:
        return 0
    if len(raw) != _ACK.size:
        return 0
    return int(_ACK.unpack(raw)[0])


def _append_private(path: Path, data: bytes) -> None:
    """Append to a file only the owner can read (the spool holds security events)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None if another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def is_live(directory: Path) -> bool:
    """True while the process that owns ``directory`` is alive (holds its lock)."""
    fd = _try_lock(directory / "lock")
    if fd is None:
        return (directory / "lock").exists()
    os.close(fd)  # closing our own description releases only our lock
    return False


class Spool:
    """
    One process's FIFO of encoded batches on disk, plus the directories it adopted.

    Thread-safe. Every method raises ``OSError`` on I/O failure; the caller decides the
    policy (the durable processor falls back to memory and counts).
    """

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        adopt: bool = True,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._segment_bytes = max(segment_bytes, HEADER_SIZE + 1)
        self._fsync_interval = fsync_interval_s
        self._clock = clock
        self._adopt_enabled = adopt
        self._lock = threading.RLock()
        self._reset_state()

    def _reset_state(self) -> None:
        self.directory: Path | None = None
        self._lock_fd: int | None = None
        self._adopted: list[tuple[Path, int]] = []  # (dir, lock fd), oldest first
        self._write_fd: int | None = None
        self._write_path: Path | None = None
        self._write_size = 0
        self._next_segment = 1
        self._usage = 0
        self._last_fsync = self._clock()
        self._dirty = False
        self._last_adopt = float("-inf")
        self._pending_records = 0
        self._pending_entries = 0
        self._head: SpoolEntry | None = None

    # --- lifecycle -----------------------------------------------------------------

    def open(self) -> None:
        """Create this process's directory and take its lock; adopt dead processes' dirs."""
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory = self.root / f"p{os.getpid()}-{secrets.token_hex(4)}"
            directory.mkdir(mode=0o700)
            fd = _try_lock(directory / "lock")
            if fd is None:
                msg = f"cannot lock spool directory {directory}"
                raise OSError(errno.EACCES, msg)
            self.directory = directory
            self._lock_fd = fd
            self._usage = _dir_usage(self.root)
            self._adopt_orphans(force=True)

    def close(self) -> None:
        """Flush and release; an empty own directory is removed, a non-empty one stays."""
        with self._lock:
            with contextlib.suppress(OSError):
                self._sync()
            self._close_writer()
            if self.directory is not None and not _segments(self.directory):
                self._remove_dir(self.directory)
            for directory, fd in self._adopted:
                if not _segments(directory):
                    self._remove_dir(directory)
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._adopted = []
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
            self._lock_fd = None

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's files without touching its locks."""
        self._lock = threading.RLock()
        fds = [self._lock_fd, self._write_fd, *(fd for _, fd in self._adopted)]
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # no LOCK_UN: the description is shared with the parent
        self._reset_state()

    # --- writing ---------------------------------------------------------------------

    def append(self, payload: bytes, count: int) -> bool:
        """Append one batch; False when the byte bound would be exceeded."""
        entry = encode_entry(payload, count)
        with self._lock:
            if self.directory is None:
                msg = "spool is not open"
                raise OSError(errno.EBADF, msg)
            if self._usage + len(entry) > self.max_bytes:
                self._usage = _dir_usage(self.root)
                if self._usage + len(entry) > self.max_bytes:
                    return False
            if self._write_fd is None or (
                self._write_size > 0 and self._write_size + len(entry) > self._segment_bytes
            ):
                self._roll()
            assert self._write_fd is not None  # noqa: S101  # _roll opened it
            try:
                view = memoryview(entry)
                while view:
                    written = os.write(self._write_fd, view)
                    view = view[written:]
            except OSError:
                self._undo_partial_write()
                raise
            self._write_size += len(entry)
            self._usage += len(entry)
            self._pending_records += count
            self._pending_entries += 1
            self._dirty = True
            if self._clock() - self._last_fsync >= self._fsync_interval:
                self._sync()
            return True

    def _undo_partial_write(self) -> None:
        fd, path = self._write_fd, self._write_path
        try:
            if fd is not None:
                os.ftruncate(fd, self._write_size)
        except OSError:
            # Cannot repair: seal this segment; readers skip its torn tail as corruption.
            self._close_writer()
            if path is not None and self._write_size == 0:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _roll(self) -> None:
        self._close_writer()
        assert self.directory is not None  # noqa: S101  # checked by the caller
        existing = _segments(self.directory)
        if existing:
            self._next_segment = max(self._next_segment, int(existing[-1].stem) + 1)
        path = self.directory / f"{self._next_segment:012d}.seg"
        self._next_segment += 1
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write_path = path
        self._write_size = 0
        self._fsync_dir(self.directory)
        self._usage = _dir_usage(self.root)

    def _close_writer(self) -> None:
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                if self._dirty:
                    os.fsync(self._write_fd)
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
        self._write_fd = None
        self._write_path = None
        self._write_size = 0
        self._dirty = False

    def _sync(self) -> None:
        if self._write_fd is not None and self._dirty:
            os.fsync(self._write_fd)
        self._dirty = False
        self._last_fsync = self._clock()

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def flush(self) -> None:
        """Force appended data to stable storage now."""
        with self._lock:
            self._sync()

    # --- reading ---------------------------------------------------------------------

    def _adopt_orphans(self, *, force: bool = False) -> None:  # noqa: C901  # a scan with skips
        if not self._adopt_enabled:
            return
        now = self._clock()
        if not force and now - self._last_adopt < _ADOPT_INTERVAL_S:
            return
        self._last_adopt = now
        known = {self.directory, *(d for d, _ in self._adopted)}
        try:
            candidates = sorted(
                (p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("p")),
                key=lambda p: p.stat().st_mtime,
            )
        except OSError:
            return
        for directory in candidates:
            if directory in known:
                continue
            fd = _try_lock(directory / "lock")
            if fd is None:
                continue
            if not _segments(directory):
                self._remove_dir(directory)
                os.close(fd)
                continue
            self._adopted.append((directory, fd))
            for seg in _segments(directory):
                for _, _, count, payload in read_entries(seg, _read_ack(seg)):
                    if payload is not None:
                        self._pending_records += count
                        self._pending_entries += 1

    def _remove_dir(self, directory: Path) -> None:
        for item in ("lock",):
            with contextlib.suppress(OSError):
                (directory / item).unlink()
        with contextlib.suppress(OSError):
            for leftover in directory.iterdir():
                if leftover.suffix == ".ack":
                    leftover.unlink()
            directory.rmdir()

    def peek(self) -> ReadResult:
        """The oldest unsent entry (cached until ``ack``), or None when all is sent."""
        with self._lock:
            if self._head is not None:
                return ReadResult(self._head)
            self._adopt_orphans()
            corrupt = 0
            sources = [(d, True) for d, _ in self._adopted]
            if self.directory is not None:
                sources.append((self.directory, False))
            for directory, adopted in sources:
                for segment in _segments(directory):
                    result = self._read_one(segment, adopted=adopted)
                    corrupt += result.corrupt_records
                    if result.entry is not None:
                        self._head = result.entry
                        return ReadResult(result.entry, corrupt)
                if adopted:
                    self._drop_adopted(directory)
            return ReadResult(None, corrupt)

    def _drop_adopted(self, directory: Path) -> None:
        for i, (d, fd) in enumerate(self._adopted):
            if d == directory:
                self._remove_dir(d)
                with contextlib.suppress(OSError):
                    os.close(fd)
                del self._adopted[i]
                return

    def _read_one(self, segment: Path, *, adopted: bool) -> ReadResult:
        """Next good entry of ``segment``; an exhausted sealed segment is deleted."""
        offset = _read_ack(segment)
        active = segment == self._write_path
        corrupt = 0
        try:
            with segment.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                while True:
                    if offset + HEADER_SIZE > size:
                        break
                    fh.seek(offset)
                    header = fh.read(HEADER_SIZE)
                    magic, length, count, crc = _HEADER.unpack(header)
                    end = offset + HEADER_SIZE + length
                    if magic == MAGIC and length <= _MAX_PAYLOAD and end <= size:
                        payload = fh.read(length)
                        check = zlib.crc32(payload, zlib.crc32(struct.pack("<I", count)))
                        if check == crc:
                            return ReadResult(
                                SpoolEntry(segment, offset, end, count, payload, adopted),
                                corrupt,
                            )
                        corrupt += count
                    elif active and magic == MAGIC and end > size:
                        break  # being written right now (cannot happen under our lock)
                    else:
                        corrupt += count if magic == MAGIC else 1
                    offset = self._resync(fh, offset + 1, size)
                    self._write_ack(segment, offset)
        except FileNotFoundError:
            return ReadResult(None, corrupt)
        if corrupt:
            self._pending_entries = max(0, self._pending_entries - 1)
        if not active:
            self._delete_segment(segment)
        elif self._write_size == offset:
            self._close_writer()
            self._delete_segment(segment)
        return ReadResult(None, corrupt)

    @staticmethod
    def _resync(fh: Any, start: int, size: int) -> int:
        fh.seek(start)
        data = fh.read(size - start)
        found = data.find(MAGIC)
        return size if found < 0 else start + found

    def _write_ack(self, segment: Path, offset: int) -> None:
        ack = segment.with_suffix(".ack")
        fd = os.open(ack, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, _ACK.pack(offset), 0)
        finally:
            os.close(fd)

    def _delete_segment(self, segment: Path) -> None:
        try:
            size = segment.stat().st_size
        except OSError:
            size = 0
        for path in (segment, segment.with_suffix(".ack")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._usage = max(0, self._usage - size)

    def ack(self, entry: SpoolEntry) -> None:
        """The entry was delivered (or dead-lettered): never send it again."""
        with self._lock:
            self._head = None
            self._pending_records = max(0, self._pending_records - entry.count)
            self._pending_entries = max(0, self._pending_entries - 1)
            try:
                size = entry.segment.stat().st_size
            except FileNotFoundError:
                return
            if entry.end >= size:
                if entry.segment == self._write_path:
                    self._close_writer()
                self._delete_segment(entry.segment)
            else:
                self._write_ack(entry.segment, entry.end)

    def dead_letter(self, payload: bytes, count: int, reason: str, source: str) -> None:
        """Keep a batch the receiver refused for good in the dead-letter area."""
        with self._lock:
            dead = self.root / DEAD_DIR
            dead.mkdir(exist_ok=True, mode=0o700)
            name = self.directory.name if self.directory is not None else f"p{os.getpid()}"
            data = encode_entry(payload, count)
            fd = os.open(dead / f"{name}.seg", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            note = {"time": time.time(), "records": count, "reason": reason[:500], "source": source}
            _append_private(dead / f"{name}.log", (json.dumps(note) + "\n").encode())
            self._usage += len(data)

    # --- introspection ---------------------------------------------------------------

    @property
    def pending_records(self) -> int:
        """Records appended (or adopted) and not yet acknowledged."""
        return self._pending_records

    @property
    def pending_entries(self) -> int:
        """Entries appended (or adopted) and not yet acknowledged."""
        return self._pending_entries

    @property
    def usage_bytes(self) -> int:
        """Bytes under the root as last measured plus own appends since."""
        return self._usage

    def write_stats(self, stats: dict[str, Any]) -> None:
        """Leave this process's counters where ``otel-audit spool stats`` can find them."""
        if self.directory is None:
            return
        directory = self.root / STATS_DIR
        directory.mkdir(exist_ok=True, mode=0o700)
        target = directory / f"{self.directory.name}.json"
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(stats, sort_keys=True))
        tmp.replace(target)
