"""Topic (log) configuration with Kafka's names, defaults and bounds.

`LogConfig` holds the per-topic settings a partition log obeys. Keys are Kafka's topic-level names
(`segment.bytes`, `retention.ms`, `flush.messages`, ...); values are validated against Kafka's
minimums (LogConfig.java). An unknown key, or a Kafka key this store does not implement, raises
`InvalidConfiguration` naming the key and listing what is supported, so a typo never passes
silently.

Values are stored as attributes with the dots replaced by underscores and the unit last, as the
rest of the code uses them: `config.segment_bytes`, `config.retention_ms`, ...

Thread-safety: a LogConfig is immutable after construction (frozen dataclass).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from logstore.errors import InvalidConfiguration

LONG_MAX = 9223372036854775807
INT_MAX = 2147483647

DEFAULT_SEGMENT_BYTES = 1073741824                  # 1 GiB
DEFAULT_SEGMENT_MS = 604800000                      # 7 days
DEFAULT_SEGMENT_INDEX_BYTES = 10485760              # 10 MiB
DEFAULT_INDEX_INTERVAL_BYTES = 4096
DEFAULT_RETENTION_MS = 604800000                    # 7 days
DEFAULT_MAX_MESSAGE_BYTES = 1048588                 # 1 MiB + LOG_OVERHEAD
DEFAULT_FILE_DELETE_DELAY_MS = 60000
MIN_SEGMENT_BYTES = 14                              # LegacyRecord.RECORD_OVERHEAD_V0
MIN_SEGMENT_INDEX_BYTES = 4

TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
COMPRESSION_TYPES = ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
CLEANUP_POLICIES = ("delete",)

# Kafka topic configs that make no sense for a single-node embedded store, or that this store
# does not implement. Naming them gives a precise error rather than "unknown key".
UNSUPPORTED_KAFKA_KEYS = {
    "cleanup.policy=compact": "log compaction is not implemented; use cleanup.policy=delete",
    "min.insync.replicas": "there is one replica; acks are governed by flush.* settings",
    "unclean.leader.election.enable": "there is one replica",
    "leader.replication.throttled.replicas": "there is one replica",
    "follower.replication.throttled.replicas": "there is one replica",
    "remote.storage.enable": "tiered storage is not implemented",
    "local.retention.ms": "tiered storage is not implemented",
    "local.retention.bytes": "tiered storage is not implemented",
    "min.cleanable.dirty.ratio": "log compaction is not implemented",
    "min.compaction.lag.ms": "log compaction is not implemented",
    "max.compaction.lag.ms": "log compaction is not implemented",
    "delete.retention.ms": "log compaction is not implemented",
}


@dataclass(frozen=True)
class _Key:
    name: str
    attr: str
    kind: type
    default: object
    minimum: int | None = None
    choices: tuple[str, ...] | None = None


_KEYS = (
    _Key("segment.bytes", "segment_bytes", int, DEFAULT_SEGMENT_BYTES, MIN_SEGMENT_BYTES),
    _Key("segment.ms", "segment_ms", int, DEFAULT_SEGMENT_MS, 1),
    _Key("segment.jitter.ms", "segment_jitter_ms", int, 0, 0),
    _Key("segment.index.bytes", "segment_index_bytes", int, DEFAULT_SEGMENT_INDEX_BYTES,
         MIN_SEGMENT_INDEX_BYTES),
    _Key("index.interval.bytes", "index_interval_bytes", int, DEFAULT_INDEX_INTERVAL_BYTES, 0),
    _Key("retention.ms", "retention_ms", int, DEFAULT_RETENTION_MS, -1),
    _Key("retention.bytes", "retention_bytes", int, -1, -1),
    _Key("flush.messages", "flush_messages", int, LONG_MAX, 1),
    _Key("flush.ms", "flush_ms", int, LONG_MAX, 0),
    _Key("max.message.bytes", "max_message_bytes", int, DEFAULT_MAX_MESSAGE_BYTES, 0),
    _Key("message.timestamp.type", "message_timestamp_type", str, "CreateTime",
         choices=TIMESTAMP_TYPES),
    _Key("compression.type", "compression_type", str, "producer", choices=COMPRESSION_TYPES),
    _Key("cleanup.policy", "cleanup_policy", str, "delete", choices=CLEANUP_POLICIES),
    _Key("preallocate", "preallocate", bool, False),
    _Key("file.delete.delay.ms", "file_delete_delay_ms", int, DEFAULT_FILE_DELETE_DELAY_MS, 0),
)
KEYS_BY_NAME = {k.name: k for k in _KEYS}
SUPPORTED_KEYS = tuple(k.name for k in _KEYS)


def _parse_value(key: _Key, value: object) -> object:
    if key.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidConfiguration(f"{key.name} must be true or false, got {value!r}")
    if key.kind is int:
        if isinstance(value, bool):
            raise InvalidConfiguration(f"{key.name} must be an integer, got {value!r}")
        try:
            number = int(value)  # accepts ints and decimal strings
        except (TypeError, ValueError):
            raise InvalidConfiguration(f"{key.name} must be an integer, got {value!r}") from None
        if key.minimum is not None and number < key.minimum:
            raise InvalidConfiguration(f"{key.name} must be >= {key.minimum}, got {number}")
        if number > LONG_MAX:
            raise InvalidConfiguration(f"{key.name} must fit a signed 64-bit long, got {number}")
        return number
    if not isinstance(value, str):
        raise InvalidConfiguration(f"{key.name} must be a string, got {value!r}")
    if key.choices and value not in key.choices:
        hint = UNSUPPORTED_KAFKA_KEYS.get(f"{key.name}={value}")
        if hint:
            raise InvalidConfiguration(f"{key.name}={value} is not supported: {hint}")
        raise InvalidConfiguration(
            f"{key.name} must be one of {', '.join(key.choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class LogConfig:
    """Per-topic settings; construct with LogConfig.from_dict({...Kafka names...})."""

    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    segment_ms: int = DEFAULT_SEGMENT_MS
    segment_jitter_ms: int = 0
    segment_index_bytes: int = DEFAULT_SEGMENT_INDEX_BYTES
    index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES
    retention_ms: int = DEFAULT_RETENTION_MS
    retention_bytes: int = -1
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    message_timestamp_type: str = "CreateTime"
    compression_type: str = "producer"
    cleanup_policy: str = "delete"
    preallocate: bool = False
    file_delete_delay_ms: int = DEFAULT_FILE_DELETE_DELAY_MS

    @classmethod
    def from_dict(cls, values: dict | None = None, base: LogConfig | None = None) -> LogConfig:
        """Validate Kafka-named settings on top of `base` (defaults when None)."""
        changes = {}
        for name, value in (values or {}).items():
            key = KEYS_BY_NAME.get(name)
            if key is None:
                raise _unknown_key(name)
            changes[key.attr] = _parse_value(key, value)
        return dataclasses.replace(base or cls(), **changes)

    def to_dict(self, only_overrides: bool = False) -> dict[str, object]:
        """Kafka-named settings; with only_overrides, just those differing from the defaults."""
        default = LogConfig()
        out = {}
        for key in _KEYS:
            value = getattr(self, key.attr)
            if not only_overrides or value != getattr(default, key.attr):
                out[key.name] = value
        return out

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def index_entries_max(self) -> int:
        return self.segment_index_bytes // 8

    @property
    def time_index_entries_max(self) -> int:
        return self.segment_index_bytes // 12


def _unknown_key(name: str) -> InvalidConfiguration:
    hint = UNSUPPORTED_KAFKA_KEYS.get(name)
    if hint:
        return InvalidConfiguration(f"topic config {name!r} is not supported: {hint}")
    return InvalidConfiguration(
        f"unknown topic config {name!r}; supported: {', '.join(SUPPORTED_KEYS)}")


def parse_key_values(pairs: list[str]) -> dict[str, str]:
    """['a=1', 'b=x'] -> {'a': '1', 'b': 'x'} (the CLI's --config KEY=VALUE)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidConfiguration(f"config must look like KEY=VALUE, got {pair!r}")
        out[name.strip()] = value.strip()
    return out
