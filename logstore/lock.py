"""Exclusive ownership of a data directory: `<dir>/.lock`, as Kafka locks each log dir.

The lock is an flock(LOCK_EX | LOCK_NB) on the file; the kernel drops it when the process dies,
including by kill -9, so a crash never leaves a stale lock. The holder writes who it is into the
file (pid, host, start time, command), and a second opener - another process, or another open in
the same process - gets LogDirLocked naming that holder.

Thread-safety: acquire/release are called once each by the owner of the directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time

from logstore.errors import LogDirLocked

LOCK_FILE = ".lock"


class DirectoryLock:
    def __init__(self, directory: str):
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LogDirLocked(
                f"data directory {os.path.dirname(self.path)} is locked by {holder}; "
                "one process owns a directory (use the wire server to share it)",
                holder=holder) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_ms": int(time.time() * 1000), "command": " ".join(sys.argv)[:512]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"pid {info.get('pid')} on {info.get('host')} "
                f"(command: {info.get('command') or '?'})")
    except (OSError, ValueError):
        return "another process (holder details unreadable)"
