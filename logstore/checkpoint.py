"""Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
`log-start-offset-checkpoint`, `replication-offset-checkpoint`).

Format (CheckpointFile / CheckpointFileWithFailureHandler), UTF-8 text, one item per line:

    0                      <- version
    2                      <- entry count
    orders 0 1234          <- topic SP partition SP offset
    orders 1 98

Written atomically (tmp file, fsync, rename, fsync dir). A malformed file raises CorruptCheckpoint
(a KafkaStorageError): the caller falls back to recovering everything, which is always safe.

Thread-safety: stateless functions; serialize writers of one file.
"""

from __future__ import annotations

from logstore import fsutil
from logstore.errors import KafkaStorageError

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_FILE = "log-start-offset-checkpoint"
HIGH_WATERMARK_FILE = "replication-offset-checkpoint"
CHECKPOINT_VERSION = 0


class CorruptCheckpoint(KafkaStorageError):
    retriable = False


def format_checkpoint(offsets: dict[tuple[str, int], int]) -> bytes:
    lines = [str(CHECKPOINT_VERSION), str(len(offsets))]
    for (topic, partition), offset in sorted(offsets.items()):
        lines.append(f"{topic} {partition} {offset}")
    return ("\n".join(lines) + "\n").encode()


def parse_checkpoint(text: str, path: str = "checkpoint") -> dict[tuple[str, int], int]:
    lines = text.splitlines()
    if len(lines) < 2:
        raise CorruptCheckpoint(f"{path}: expected version and count lines")
    if lines[0].strip() != str(CHECKPOINT_VERSION):
        raise CorruptCheckpoint(f"{path}: unsupported version {lines[0].strip()!r}")
    try:
        count = int(lines[1])
    except ValueError:
        raise CorruptCheckpoint(f"{path}: bad entry count {lines[1]!r}") from None
    entries = [line for line in lines[2:] if line.strip()]
    if count != len(entries):
        raise CorruptCheckpoint(f"{path}: header says {count} entries, found {len(entries)}")
    out = {}
    for number, line in enumerate(entries, start=3):
        parts = line.split(" ")
        try:
            topic, partition, offset = parts[0], int(parts[1]), int(parts[2])
        except (IndexError, ValueError):
            raise CorruptCheckpoint(f"{path}:{number}: malformed entry {line!r}") from None
        if len(parts) != 3 or offset < 0 or partition < 0:
            raise CorruptCheckpoint(f"{path}:{number}: malformed entry {line!r}")
        out[(topic, partition)] = offset
    return out


def read_checkpoint(path: str) -> dict[tuple[str, int], int]:
    """Entries of the file at path; {} when it does not exist."""
    try:
        text = fsutil.read_text(path)
    except UnicodeDecodeError as exc:
        raise CorruptCheckpoint(f"{path}: not UTF-8 text ({exc})") from None
    if text is None:
        return {}
    return parse_checkpoint(text, path)


def write_checkpoint(path: str, offsets: dict[tuple[str, int], int]) -> None:
    fsutil.atomic_write(path, format_checkpoint(offsets))
