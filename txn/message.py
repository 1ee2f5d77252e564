"""confluent-kafka's value types for the embedded clients: Message, TopicPartition,
ConsumerGroupMetadata and the offset / timestamp constants.

`Message` is a `__slots__` class. The consumer does not call its constructor: whole record
batches become Messages in C (`logstore._ffi.build_record_objects`, which fills the slots
listed in `RECORD_SLOTS` and `CONSTANT_SLOTS` in place), so a poll() hands out objects that
cost one allocation each. The constructor, with confluent-kafka's keyword arguments, is for
tests and for the producer's delivery reports.

Accessors are confluent-kafka's: topic() partition() offset() key() value() headers() error()
timestamp() -> (type, ms) latency() leader_epoch() len(), and the setters set_key set_value
set_headers set_topic set_error. `TopicPartition` keeps confluent-kafka's read-only fields
(topic, partition, metadata, leader_epoch, error; only offset is writable), ordering, hashing
on (topic, partition) and text form.

Thread-safety: a Message or TopicPartition belongs to whoever holds it; nothing is shared.
"""

from __future__ import annotations

from txn.kafka_error import KafkaError

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001

NO_LEADER_EPOCH = -1


class Message:
    """A consumed message, a delivery report, or an event (error() is not None)."""

    __slots__ = ("_offset", "_key", "_value", "_headers", "_timestamp", "_topic",
                 "_partition", "_error", "_timestamp_type", "_latency", "_leader_epoch")

    def __init__(self, topic: str | None = None, partition: int | None = None,
                 offset: int | None = None, key=None, value=None, headers=None,
                 error: KafkaError | None = None, timestamp: tuple[int, int] | None = None,
                 latency: float | None = None, leader_epoch: int | None = None,
                 delivery_count: int | None = None):
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._error = error
        if timestamp is None:
            self._timestamp_type, self._timestamp = TIMESTAMP_NOT_AVAILABLE, 0
        else:
            self._timestamp_type, self._timestamp = timestamp
        self._latency = latency
        self._leader_epoch = leader_epoch

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    deserialized_key = key
    deserialized_value = value

    def headers(self):
        return self._headers

    def error(self) -> KafkaError | None:
        return self._error

    def timestamp(self) -> tuple[int, int]:
        """(TIMESTAMP_CREATE_TIME | TIMESTAMP_LOG_APPEND_TIME | TIMESTAMP_NOT_AVAILABLE, ms)."""
        return self._timestamp_type, self._timestamp

    def latency(self) -> float | None:
        latency = self._latency
        return None if latency is None or latency < 0 else latency

    def leader_epoch(self) -> int | None:
        epoch = self._leader_epoch
        return None if epoch is None or epoch < 0 else epoch

    def delivery_count(self) -> int | None:
        return None                           # share groups (KIP-932) only

    def set_headers(self, headers) -> None:
        self._headers = headers

    def set_key(self, key) -> None:
        self._key = key

    def set_value(self, value) -> None:
        self._value = value

    def set_topic(self, topic: str) -> None:
        self._topic = topic

    def set_error(self, error: KafkaError | None) -> None:
        self._error = error

    def __len__(self) -> int:
        value = self._value
        return 0 if value is None else len(value)

    def __repr__(self) -> str:
        if self._error is not None:
            return f"<Message error={self._error}>"
        return (f"<Message {self._topic}[{self._partition}]@{self._offset} "
                f"key={self._key!r} len={len(self)}>")


# What C fills per record, then the constant fields, in the order build_record_objects expects.
RECORD_SLOTS = (Message._offset, Message._key, Message._value, Message._headers,
                Message._timestamp)
CONSTANT_SLOTS = (Message._topic, Message._partition, Message._error,
                  Message._timestamp_type, Message._latency, Message._leader_epoch)
MESSAGE_SLOTS = RECORD_SLOTS + CONSTANT_SLOTS


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


class TopicPartition:
    """A topic partition, with an offset (and, in results, an error)."""

    __slots__ = ("_topic", "_partition", "offset", "_metadata", "_leader_epoch", "_error")

    def __init__(self, topic: str, partition: int = -1, offset: int = OFFSET_INVALID,
                 metadata: str | None = None, leader_epoch: int | None = None):
        if not isinstance(topic, str):
            raise TypeError(f"argument 1 must be str, not {type(topic).__name__}")
        self._topic = topic
        self._partition = _check_int("partition", partition)
        self.offset = _check_int("offset", offset)
        self._metadata = metadata
        self._leader_epoch = (None if leader_epoch is None or leader_epoch < 0
                              else _check_int("leader_epoch", leader_epoch))
        self._error = None

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def partition(self) -> int:
        return self._partition

    @property
    def metadata(self) -> str | None:
        return self._metadata

    @property
    def leader_epoch(self) -> int | None:
        return self._leader_epoch

    @property
    def error(self) -> KafkaError | None:
        return self._error

    @classmethod
    def _result(cls, topic: str, partition: int, offset: int = OFFSET_INVALID,
                metadata: str | None = None, leader_epoch: int | None = None,
                error: KafkaError | None = None) -> TopicPartition:
        """A result entry (the clients set error, which applications cannot)."""
        tp = cls(topic, partition, offset, metadata, leader_epoch)
        tp._error = error
        return tp

    def _key(self) -> tuple[str, int]:
        return self._topic, self._partition

    def __hash__(self) -> int:
        return hash((self._topic, self._partition))

    def __eq__(self, other) -> bool:
        if not isinstance(other, TopicPartition):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: TopicPartition) -> bool:
        if not isinstance(other, TopicPartition):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return (f"TopicPartition{{topic={self._topic},partition={self._partition},"
                f"offset={self.offset},leader_epoch={self._leader_epoch},error={self._error}}}")

    __repr__ = __str__


class ConsumerGroupMetadata:
    """What consumer_group_metadata() returns and send_offsets_to_transaction() takes: the
    group, and the member's generation and ids, which the group coordinator checks (KIP-447)."""

    __slots__ = ("group_id", "generation_id", "member_id", "group_instance_id")

    def __init__(self, group_id: str, generation_id: int = -1, member_id: str = "",
                 group_instance_id: str | None = None):
        self.group_id = group_id
        self.generation_id = generation_id
        self.member_id = member_id
        self.group_instance_id = group_instance_id

    def __repr__(self) -> str:
        return (f"ConsumerGroupMetadata(group_id={self.group_id!r}, "
                f"generation_id={self.generation_id}, member_id={self.member_id!r})")
