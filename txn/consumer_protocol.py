"""Kafka's consumer protocol: the bytes consumers put in JoinGroup and SyncGroup.

A consumer joins a group with protocol type "consumer" and, per assignor, a Subscription as the
protocol metadata; the leader answers SyncGroup with one Assignment per member. Real clients
(librdkafka, kafka-python, aiokafka, the Java client) send these bytes, so encoding and decoding
are byte-exact to clients/src/main/resources/common/message/ConsumerProtocol{Subscription,
Assignment}.json (non-flexible; every message starts with an int16 version):

    Subscription  v0  topics [string], userData nullable bytes
                  v1  + ownedPartitions [topic string, partitions [int32]]
                  v2  + generationId int32 (default -1)
                  v3  + rackId nullable string (default null)
    Assignment    v0-v3  assignedPartitions [topic string, partitions [int32]],
                         userData nullable bytes      (v1-v3 only follow the Subscription)

Decoding follows ConsumerProtocol.deserialize*: a negative version is an error; a version newer
than 3 is read with the v3 layout (new versions may only append fields); bytes after the
known fields are ignored. Partition lists are flat [(topic, partition)] as Kafka's
Subscription.ownedPartitions() / Assignment.partitions(); encoding groups them by topic in
order of first appearance, as Kafka's TopicPartition collections do.

Errors: malformed bytes raise InvalidRequest (the bytes come from a client); an unusable
version raises UnsupportedVersion.

Thread-safety: stateless functions and immutable values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from txn.errors import InvalidRequest, UnsupportedVersion
from txn.offsets_log import Reader, Writer

PROTOCOL_TYPE = "consumer"
LOWEST_VERSION = 0
HIGHEST_SUBSCRIPTION_VERSION = 3
HIGHEST_ASSIGNMENT_VERSION = 3
OWNED_PARTITIONS_VERSION = 1
GENERATION_ID_VERSION = 2
RACK_ID_VERSION = 3
NO_GENERATION = -1


@dataclass(frozen=True)
class Subscription:
    topics: list[str]
    user_data: bytes | None = None
    owned_partitions: list[tuple[str, int]] = field(default_factory=list)
    generation_id: int = NO_GENERATION
    rack_id: str | None = None
    version: int = HIGHEST_SUBSCRIPTION_VERSION     # as read; the default for encoding


@dataclass(frozen=True)
class Assignment:
    partitions: list[tuple[str, int]]
    user_data: bytes | None = None
    version: int = HIGHEST_ASSIGNMENT_VERSION


def _check_version(version: int, highest: int, what: str) -> int:
    """ConsumerProtocol.check*Version: below 0 refused, above the highest read as the highest."""
    if version < LOWEST_VERSION:
        raise UnsupportedVersion(f"unsupported {what} version {version}")
    return min(version, highest)


def _grouped(partitions: list[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return list(by_topic.items())


def _write_topic_partitions(out: Writer, item: tuple[str, list[int]]) -> None:
    topic, partitions = item
    out.string(topic)
    out.array(partitions, lambda w, p: w.int32(p))


def _read_topic_partitions(reader: Reader) -> list[tuple[str, int]]:
    topic = reader.string("topic")
    return [(topic, p) for p in reader.array("partitions", lambda r: r.int32("partition"))]


def _read_partition_list(reader: Reader, name: str) -> list[tuple[str, int]]:
    return [tp for chunk in reader.array(name, _read_topic_partitions) for tp in chunk]


def encode_subscription(subscription: Subscription, version: int | None = None) -> bytes:
    """The Subscription's bytes at `version` (default subscription.version); fields the
    version does not have are left out."""
    version = _check_version(subscription.version if version is None else version,
                             HIGHEST_SUBSCRIPTION_VERSION, "subscription")
    out = Writer().int16(version)
    out.array(subscription.topics, lambda w, t: w.string(t))
    out.nullable_bytes(subscription.user_data)
    if version >= OWNED_PARTITIONS_VERSION:
        out.array(_grouped(subscription.owned_partitions), _write_topic_partitions)
    if version >= GENERATION_ID_VERSION:
        out.int32(subscription.generation_id)
    if version >= RACK_ID_VERSION:
        out.nullable_string(subscription.rack_id)
    return out.getvalue()


def decode_subscription(data) -> Subscription:
    reader = Reader(data, "consumer protocol subscription", InvalidRequest)
    raw_version = reader.int16("version")
    version = _check_version(raw_version, HIGHEST_SUBSCRIPTION_VERSION, "subscription")
    topics = reader.array("topics", lambda r: r.string("topic"))
    user_data = reader.nullable_bytes("userData")
    owned: list[tuple[str, int]] = []
    generation_id = NO_GENERATION
    rack_id = None
    if version >= OWNED_PARTITIONS_VERSION:
        owned = _read_partition_list(reader, "ownedPartitions")
    if version >= GENERATION_ID_VERSION:
        generation_id = reader.int32("generationId")
    if version >= RACK_ID_VERSION:
        rack_id = reader.nullable_string("rackId")
    return Subscription(topics, user_data, owned, generation_id, rack_id, raw_version)


def encode_assignment(assignment: Assignment, version: int | None = None) -> bytes:
    version = _check_version(assignment.version if version is None else version,
                             HIGHEST_ASSIGNMENT_VERSION, "assignment")
    out = Writer().int16(version)
    out.array(_grouped(assignment.partitions), _write_topic_partitions)
    out.nullable_bytes(assignment.user_data)
    return out.getvalue()


def decode_assignment(data) -> Assignment:
    """An Assignment; empty bytes (what the coordinator sends a member the leader left out)
    decode as an empty assignment, as librdkafka reads them."""
    if data is not None and len(data) == 0:
        return Assignment([], None, LOWEST_VERSION)
    reader = Reader(data, "consumer protocol assignment", InvalidRequest)
    raw_version = reader.int16("version")
    _check_version(raw_version, HIGHEST_ASSIGNMENT_VERSION, "assignment")
    partitions = _read_partition_list(reader, "assignedPartitions")
    user_data = reader.nullable_bytes("userData")
    return Assignment(partitions, user_data, raw_version)
