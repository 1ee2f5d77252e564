"""A simulated power cut for tests: every file of a tree back to its last fsync.

    start_journal(root)      # before the workload: the tree as it is now counts as durable
    ...                      # run the store; abandon it (no close) at the moment of the cut
    power_cut(root)          # rewind, stop the journal; then reopen and check

The model is the C journal's (csrc/io_journal.c, through logstore._ffi): file contents go back
to their state when their last fsync started; with `dir_entries` (the default, the strict POSIX
reading) each directory's names also go back to its last fsync, so a file created, renamed or
removed without a directory fsync is lost, moved back or brought back. With
dir_entries=False names stay as they are (a file system that committed its metadata but lost
the data blocks). Stores through mmap (indexes) and torn sectors are not modelled.

Thread-safety: one journal per process; tests using it must not run in parallel threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from logstore import _ffi


@dataclass(frozen=True)
class CutReport:
    files_rewound: int           # files whose size or bytes went back
    entries_changed: int         # directory names removed, moved back or brought back


def start_journal(root: str) -> None:
    """Start recording; every directory that exists under root now is durable as it is."""
    _ffi.io_journal_start()
    for dirpath, _dirnames, _files in os.walk(root):
        _ffi.io_journal_note_dir(dirpath)


def power_cut(root: str, *, dir_entries: bool = True) -> CutReport:
    """Cut the power: rewind the tree under root, then stop the journal. The store must have
    let go of its files first (abandon())."""
    try:
        files, entries = _ffi.io_journal_cut(str(root), dir_entries)
    finally:
        _ffi.io_journal_stop()
    return CutReport(files, entries)


def stop_journal() -> None:
    """Forget the journal without cutting (test teardown)."""
    _ffi.io_journal_stop()
