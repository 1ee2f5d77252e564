"""Opening a partition directory: clean-up, segment loading and recovery (Kafka's LogLoader).

Steps, in order:
  1. remove leftovers of interrupted operations: `*.deleted`, `*.cleaned`, `*.swap`, `*.tmp`
     (a `.swap` here is always an incomplete copy-truncate: its rename is the commit point), and
     index files whose `.log` is gone;
  2. open every `<base>.log` as a segment, the last one active;
  3. after a clean shutdown, each segment is loaded from its indexes (sanity-checked); a segment
     whose index is missing or fails its check is recovered instead;
  4. after an unclean shutdown, every segment from the one holding the recovery point onward is
     recovered in order (a full CRC scan in C, indexes rebuilt); the first invalid batch and
     everything after it is cut, all later segments are removed, and a warning says how much;
  5. recovered data is fsynced, so the new recovery point (the log end offset) is honest.

Thread-safety: runs before the Log is shared; not thread-safe.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from logstore import fsutil
from logstore.config import LogConfig
from logstore.segment import (CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX,
                              SWAP_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LogSegment,
                              parse_base_offset)

log = logging.getLogger("logstore.recovery")

LEFTOVER_SUFFIXES = (DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX, ".tmp")
INDEX_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)


@dataclass
class RecoveryReport:
    """What opening the log found and did; `truncated_bytes` > 0 means data was cut."""

    directory: str
    clean_shutdown: bool
    segments_recovered: list[int] = field(default_factory=list)
    truncated_bytes: int = 0
    truncated_at: tuple[str, int] | None = None    # (file, position) of the first invalid batch
    truncation_reason: str = ""
    segments_removed: list[int] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)
    indexes_rebuilt: list[int] = field(default_factory=list)

    @property
    def recovered_from_offset(self) -> int | None:
        return self.segments_recovered[0] if self.segments_recovered else None


def remove_leftovers(directory: str, report: RecoveryReport) -> list[int]:
    """Delete interrupted-operation files and orphan indexes; return the segment base offsets."""
    names = os.listdir(directory)
    bases = set()
    for name in names:
        if name.endswith(LOG_SUFFIX) and parse_base_offset(name) is not None:
            bases.add(parse_base_offset(name))
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(LEFTOVER_SUFFIXES):
            os.unlink(path)
            report.leftovers_removed.append(name)
        elif name.endswith(INDEX_SUFFIXES):
            base = parse_base_offset(name)
            if base is not None and base not in bases:
                os.unlink(path)
                report.leftovers_removed.append(name)
    return sorted(bases)


def load_segments(directory: str, config: LogConfig, *, clean_shutdown: bool,
                  recovery_point: int, log_start_offset: int, now_ms: int,
                  on_batches=None) -> tuple[list[LogSegment], RecoveryReport]:
    report = RecoveryReport(directory, clean_shutdown)
    bases = remove_leftovers(directory, report)
    if not bases:
        segment = LogSegment(directory, log_start_offset, config, active=True, created_ms=now_ms)
        return [segment], report
    segments = [LogSegment(directory, base, config, active=(i == len(bases) - 1),
                           created_ms=now_ms) for i, base in enumerate(bases)]
    first_unsafe = len(segments) if clean_shutdown else _segment_holding(segments, recovery_point)
    for i, segment in enumerate(segments):
        if i < first_unsafe:
            if segment.load_clean():
                continue
            report.indexes_rebuilt.append(segment.base_offset)
            log.warning("%s: index of segment %d missing or corrupt; rebuilding it",
                        directory, segment.base_offset)
        truncated, reason = segment.recover(on_batches)
        report.segments_recovered.append(segment.base_offset)
        if truncated:
            _note_truncation(report, segment, truncated, reason)
            removed = segments[i + 1:]
            for later in removed:
                later.delete()
                report.segments_removed.append(later.base_offset)
            segments = segments[: i + 1]
            break
    if not segments[-1].active:
        segments[-1].make_active()
    if report.segments_recovered:
        for segment in segments:
            segment.flush_all()
        fsutil.fsync_dir(directory)
    _log_report(report)
    return segments, report


def _segment_holding(segments: list[LogSegment], offset: int) -> int:
    """Index of the segment whose range holds `offset` (the first to recover)."""
    index = 0
    for i, segment in enumerate(segments):
        if segment.base_offset <= offset:
            index = i
    return index


def _note_truncation(report: RecoveryReport, segment: LogSegment, truncated: int,
                     reason: str) -> None:
    report.truncated_bytes += truncated
    report.truncated_at = (segment.log_path, segment.size)
    report.truncation_reason = reason


def _log_report(report: RecoveryReport) -> None:
    if report.truncated_bytes or report.segments_removed:
        path, position = report.truncated_at or ("?", 0)
        log.warning(
            "%s: recovery cut %d bytes at byte %d of %s (%s) and removed %d later segment(s)",
            report.directory, report.truncated_bytes, position, os.path.basename(path),
            report.truncation_reason or "invalid batch", len(report.segments_removed))
    elif report.segments_recovered:
        log.info("%s: recovered %d segment(s), nothing cut", report.directory,
                 len(report.segments_recovered))
