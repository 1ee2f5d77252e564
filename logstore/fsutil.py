"""Small durable-file helpers shared by the storage layer.

`atomic_write(path, data)` is Kafka's CheckpointFile discipline: write `<path>.tmp`, fsync it,
rename it over `path`, fsync the directory. A reader therefore sees the old or the new content,
never a torn mix, and after return the new content survives a power cut.

Thread-safety: the functions hold no state; concurrent atomic_write calls on one path must be
serialized by the caller (they share the .tmp name).
"""

from __future__ import annotations

import os

from logstore import _ffi


def fsync_dir(path: str) -> None:
    """fsync a directory so that entries created, renamed or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _ffi.fsync(fd, f"fsync directory {path}")
    finally:
        os.close(fd)


def make_dirs(path: str) -> None:
    """os.makedirs(path, exist_ok=True), then fsync the parent of every directory it created, so
    the new names survive a power cut (a new directory is an entry of its parent)."""
    path = os.path.abspath(path)
    created = []
    head = path
    while not os.path.isdir(head):
        created.append(head)
        head = os.path.dirname(head)
    os.makedirs(path, exist_ok=True)
    for directory in reversed(created):
        fsync_dir(os.path.dirname(directory))


def atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _ffi.pwrite_all(fd, data, 0, f"write {tmp}")
        _ffi.fsync(fd, f"fsync {tmp}")
    finally:
        os.close(fd)
    _ffi.rename(tmp, path, f"rename {tmp} -> {path}")
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def read_text(path: str) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
