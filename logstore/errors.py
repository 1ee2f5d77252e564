"""Exceptions of the storage layer, named after Kafka's errors.

Every exception carries `code`, the Kafka protocol error code it corresponds to (the wire server
answers with it), and `retriable`, as Kafka's Errors.java marks it. Messages name the thing that
failed: file, byte position, offset, expected versus actual value.

`ERRORS_BY_CODE` maps a Kafka error code to its class, built from the class table so the two cannot
disagree. The `txn` package subclasses `LogstoreError` for its own errors (ProducerFenced, ...).

Thread-safety: stateless; safe everywhere.
"""

from __future__ import annotations


class LogstoreError(Exception):
    """Base of every logstore error. code -1 is Kafka's UNKNOWN_SERVER_ERROR."""

    code = -1
    name = "UNKNOWN_SERVER_ERROR"
    retriable = False


class CorruptRecord(LogstoreError):
    """A record batch fails its CRC or size checks (CORRUPT_MESSAGE)."""

    code = 2
    name = "CORRUPT_MESSAGE"


class InvalidRecord(LogstoreError):
    """A batch is well-formed but breaks a rule: count mismatch, control batch from a client."""

    code = 87
    name = "INVALID_RECORD"


class RecordTooLarge(LogstoreError):
    """A batch is larger than max.message.bytes (MESSAGE_TOO_LARGE)."""

    code = 10
    name = "MESSAGE_TOO_LARGE"


class RecordBatchTooLarge(LogstoreError):
    """A batch is larger than segment.bytes (RECORD_LIST_TOO_LARGE)."""

    code = 18
    name = "RECORD_LIST_TOO_LARGE"


class OffsetOutOfRange(LogstoreError):
    """A read below the log start offset or above the log end offset."""

    code = 1
    name = "OFFSET_OUT_OF_RANGE"


class UnknownTopicOrPartition(LogstoreError):
    code = 3
    name = "UNKNOWN_TOPIC_OR_PARTITION"


class InvalidTopic(LogstoreError):
    code = 17
    name = "INVALID_TOPIC_EXCEPTION"


class TopicAlreadyExists(LogstoreError):
    code = 36
    name = "TOPIC_ALREADY_EXISTS"


class InvalidPartitions(LogstoreError):
    code = 37
    name = "INVALID_PARTITIONS"


class InvalidConfiguration(LogstoreError):
    """An unknown config key or a value out of range (INVALID_CONFIG)."""

    code = 40
    name = "INVALID_CONFIG"


class InvalidTimestamp(LogstoreError):
    code = 32
    name = "INVALID_TIMESTAMP"


class UnsupportedCompressionType(LogstoreError):
    code = 76
    name = "UNSUPPORTED_COMPRESSION_TYPE"


class UnsupportedForMessageFormat(LogstoreError):
    """A batch with a magic other than 2."""

    code = 43
    name = "UNSUPPORTED_FOR_MESSAGE_FORMAT"


class KafkaStorageError(LogstoreError):
    """An I/O error on the log directory (KAFKA_STORAGE_ERROR). `errno` is set when known."""

    code = 56
    name = "KAFKA_STORAGE_ERROR"
    retriable = True

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class LogDirFull(KafkaStorageError):
    """ENOSPC / EDQUOT while writing. Nothing partial stays visible."""


class LogOffline(KafkaStorageError):
    """The log refused writes after an unrecoverable I/O failure (a failed fsync): reopen it so
    that recovery decides what is on disk, as Kafka takes the log dir offline."""


class LogClosed(KafkaStorageError):
    """An operation on a closed Log or LogStore."""

    retriable = False


class LogDirLocked(KafkaStorageError):
    """Another process holds the directory's exclusive lock. `holder` describes it."""

    retriable = False

    def __init__(self, message: str, holder: str = ""):
        super().__init__(message)
        self.holder = holder


class CorruptStoreMetadata(KafkaStorageError):
    """A store file that recovery cannot rebuild (topics.json, meta.properties) is unreadable:
    the message names the file and what is wrong; nothing is changed until it is repaired."""

    retriable = False


class CorruptIndex(LogstoreError):
    """An index file breaks its invariants; recovery rebuilds it from the log."""

    name = "CORRUPT_INDEX"


class IndexOffsetOverflow(LogstoreError):
    """An offset does not fit the segment's relative int32 range: the segment must roll."""

    name = "INDEX_OFFSET_OVERFLOW"


ERRORS_BY_CODE: dict[int, type[LogstoreError]] = {}


def register(cls: type[LogstoreError]) -> type[LogstoreError]:
    """Record a class in ERRORS_BY_CODE under its Kafka code (first registration wins)."""
    if cls.code >= 0:
        ERRORS_BY_CODE.setdefault(cls.code, cls)
    return cls


for _cls in (CorruptRecord, InvalidRecord, RecordTooLarge, RecordBatchTooLarge, OffsetOutOfRange,
             UnknownTopicOrPartition, InvalidTopic, TopicAlreadyExists, InvalidPartitions,
             InvalidConfiguration, InvalidTimestamp, UnsupportedCompressionType,
             UnsupportedForMessageFormat, KafkaStorageError):
    register(_cls)
