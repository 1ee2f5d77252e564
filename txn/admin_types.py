"""Value types of the embedded AdminClient, with confluent-kafka's names, constructor
arguments, attributes and enum values (confluent_kafka.admin and confluent_kafka._model):
NewTopic, NewPartitions, ConfigResource, ConfigEntry and their enums, the consumer-group
results, DeletedRecords, OffsetSpec and ListOffsetsResultInfo, Node, TopicCollection,
TopicDescription, TopicPartitionInfo, DescribeClusterResult, and the deprecated
list_groups() GroupMetadata / GroupMember.

Thread-safety: plain values; whoever holds one owns it.
"""

from __future__ import annotations

import functools
from enum import Enum


class ResourceType(Enum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    BROKER = 4
    TRANSACTIONAL_ID = 5


class ConfigSource(Enum):
    UNKNOWN_CONFIG = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    GROUP_CONFIG = 8


class AlterConfigOpType(Enum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class ConsumerGroupState(Enum):
    UNKNOWN = 0
    PREPARING_REBALANCING = 1
    COMPLETING_REBALANCING = 2
    STABLE = 3
    DEAD = 4
    EMPTY = 5


class ConsumerGroupType(Enum):
    UNKNOWN = 0
    CONSUMER = 1
    CLASSIC = 2


class IsolationLevel(Enum):
    READ_UNCOMMITTED = 0
    READ_COMMITTED = 1


@functools.total_ordering
class NewTopic:
    """A topic to create (num_partitions -1: the broker's num.partitions)."""

    def __init__(self, topic: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignment=None, config: dict | None = None):
        if not isinstance(topic, str):
            raise TypeError(f"topic must be str, not {type(topic).__name__}")
        self.topic = topic
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignment = replica_assignment
        self.config = dict(config) if config else {}

    def __str__(self) -> str:
        return self.topic

    def __repr__(self) -> str:
        return (f"NewTopic(topic={self.topic},num_partitions={self.num_partitions},"
                f"replication_factor={self.replication_factor})")

    def __hash__(self) -> int:
        return hash(self.topic)

    def __eq__(self, other) -> bool:
        return isinstance(other, NewTopic) and self.topic == other.topic

    def __lt__(self, other: NewTopic) -> bool:
        return self.topic < other.topic


@functools.total_ordering
class NewPartitions:
    """Grow a topic to new_total_count partitions."""

    def __init__(self, topic: str, new_total_count: int, replica_assignment=None):
        if not isinstance(topic, str):
            raise TypeError(f"topic must be str, not {type(topic).__name__}")
        self.topic = topic
        self.new_total_count = new_total_count
        self.replica_assignment = replica_assignment

    def __str__(self) -> str:
        return self.topic

    def __repr__(self) -> str:
        return f"NewPartitions(topic={self.topic},new_total_count={self.new_total_count})"

    def __hash__(self) -> int:
        return hash(self.topic)

    def __eq__(self, other) -> bool:
        return isinstance(other, NewPartitions) and self.topic == other.topic

    def __lt__(self, other: NewPartitions) -> bool:
        return self.topic < other.topic


class ConfigEntry:
    """One described (or incrementally altered) configuration value."""

    def __init__(self, name: str, value: str | None,
                 source: ConfigSource = ConfigSource.UNKNOWN_CONFIG, is_read_only: bool = False,
                 is_default: bool = False, is_sensitive: bool = False,
                 is_synonym: bool = False, synonyms: dict = {},  # noqa: B006 (as theirs)
                 incremental_operation: AlterConfigOpType | None = None):
        self.name = name
        self.value = value
        self.source = source
        self.is_read_only = bool(is_read_only)
        self.is_default = bool(is_default)
        self.is_sensitive = bool(is_sensitive)
        self.is_synonym = bool(is_synonym)
        self.synonyms = dict(synonyms or {})
        self.incremental_operation = incremental_operation

    def __repr__(self) -> str:
        return f"ConfigEntry({self.name}=\"{self.value}\")"

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


@functools.total_ordering
class ConfigResource:
    """A resource (topic, broker, group) and its configuration."""

    Type = ResourceType

    def __init__(self, restype, name: str, set_config: dict | None = None,
                 described_configs: dict | None = None, error=None,
                 incremental_configs: list | None = None):
        if name is None:
            raise ValueError("Expected resource name to be a string")
        if isinstance(restype, str):
            try:
                restype = ResourceType[restype.upper()]
            except KeyError:
                raise ValueError(f'Unknown resource type "{restype}": should be a '
                                 "ConfigResource.Type") from None
        elif isinstance(restype, int):
            restype = ResourceType(restype)
        self.restype = restype
        self.restype_int = int(restype.value)
        self.name = name
        self.set_config_dict = dict(set_config or {})
        self.incremental_configs = list(incremental_configs or [])
        self.configs = described_configs
        self.error = error

    def __repr__(self) -> str:
        if self.error is not None:
            return f"ConfigResource({self.restype},{self.name},{self.error!r})"
        return f"ConfigResource({self.restype},{self.name})"

    def __hash__(self) -> int:
        return hash((self.restype, self.name))

    def __eq__(self, other) -> bool:
        if not isinstance(other, ConfigResource):
            return NotImplemented
        return (self.restype, self.name) == (other.restype, other.name)

    def __lt__(self, other: ConfigResource) -> bool:
        return (self.restype.value, self.name) < (other.restype.value, other.name)

    def __len__(self) -> int:
        return len(self.set_config_dict)

    def set_config(self, name: str, value: str, overwrite: bool = True) -> None:
        if not overwrite and name in self.set_config_dict:
            return
        self.set_config_dict[name] = value

    def add_incremental_config(self, config_entry: ConfigEntry) -> None:
        self.incremental_configs.append(config_entry)


class Node:
    """A broker: the embedded store is node 0."""

    def __init__(self, id: int, host: str, port: int, rack: str | None = None):  # noqa: A002
        self.id = id
        self.id_string = str(id)
        self.host = host
        self.port = port
        self.rack = rack

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.host}:{self.port})"


class ConsumerGroupListing:
    def __init__(self, group_id: str, is_simple_consumer_group: bool, state=None, type=None):
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.state = state
        self.type = type


class ListConsumerGroupsResult:
    def __init__(self, valid: list | None = None, errors: list | None = None):
        self.valid = valid or []
        self.errors = errors or []


class MemberAssignment:
    def __init__(self, topic_partitions: list | None):
        self.topic_partitions = topic_partitions or []


class MemberDescription:
    def __init__(self, member_id: str, client_id: str, host: str,
                 assignment: MemberAssignment, group_instance_id: str | None = None,
                 target_assignment: MemberAssignment | None = None):
        self.member_id = member_id
        self.client_id = client_id
        self.host = host
        self.assignment = assignment
        self.group_instance_id = group_instance_id
        self.target_assignment = target_assignment


class ConsumerGroupDescription:
    def __init__(self, group_id: str, is_simple_consumer_group: bool, members: list,
                 partition_assignor: str, state, coordinator: Node,
                 authorized_operations=None, type=ConsumerGroupType.UNKNOWN):
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.members = members
        self.partition_assignor = partition_assignor
        self.state = state
        self.coordinator = coordinator
        self.authorized_operations = authorized_operations
        self.type = type


class ConsumerGroupTopicPartitions:
    def __init__(self, group_id: str, topic_partitions: list | None = None):
        self.group_id = group_id
        self.topic_partitions = topic_partitions

    def __hash__(self) -> int:
        return hash(self.group_id)


class DeletedRecords:
    """delete_records() result: the partition's new low watermark (log start offset)."""

    def __init__(self, low_watermark: int):
        self.low_watermark = low_watermark

    def __repr__(self) -> str:
        return f"DeletedRecords(low_watermark={self.low_watermark})"


class OffsetSpec:
    """What list_offsets() looks up: earliest(), latest(), max_timestamp(),
    for_timestamp(ms). `_value` is the ListOffsets timestamp (-2, -1, -3, or the time)."""

    _value = 0

    @classmethod
    def earliest(cls) -> OffsetSpec:
        return EarliestSpec()

    @classmethod
    def latest(cls) -> OffsetSpec:
        return LatestSpec()

    @classmethod
    def max_timestamp(cls) -> OffsetSpec:
        return MaxTimestampSpec()

    @classmethod
    def for_timestamp(cls, timestamp: int) -> OffsetSpec:
        return TimestampSpec(timestamp)


class TimestampSpec(OffsetSpec):
    def __init__(self, timestamp: int):
        self.timestamp = timestamp
        self._value = timestamp


class MaxTimestampSpec(OffsetSpec):
    _value = -3


class LatestSpec(OffsetSpec):
    _value = -1


class EarliestSpec(OffsetSpec):
    _value = -2


class ListOffsetsResultInfo:
    def __init__(self, offset: int, timestamp: int, leader_epoch: int):
        self.offset = offset
        self.timestamp = timestamp
        self.leader_epoch = leader_epoch if leader_epoch is not None and leader_epoch >= 0 \
            else None

    def __repr__(self) -> str:
        return f"ListOffsetsResultInfo(offset={self.offset}, timestamp={self.timestamp})"


class TopicCollection:
    def __init__(self, topic_names: list):
        self.topic_names = list(topic_names)


class TopicPartitionInfo:
    def __init__(self, id: int, leader: Node, replicas: list, isr: list):  # noqa: A002
        self.id = id
        self.leader = leader
        self.replicas = replicas
        self.isr = isr


class TopicDescription:
    def __init__(self, name: str, topic_id, is_internal: bool, partitions: list,
                 authorized_operations=None):
        self.name = name
        self.topic_id = topic_id
        self.is_internal = is_internal
        self.partitions = partitions
        self.authorized_operations = authorized_operations


class DescribeClusterResult:
    def __init__(self, controller: Node, nodes: list, cluster_id: str | None = None,
                 authorized_operations=None):
        self.controller = controller
        self.nodes = nodes
        self.cluster_id = cluster_id
        self.authorized_operations = authorized_operations


class GroupMember:
    """A member in list_groups() results (deprecated API)."""

    def __init__(self) -> None:
        self.id = None
        self.client_id = None
        self.client_host = None
        self.metadata = None
        self.assignment = None


class GroupMetadata:
    """A group in list_groups() results (deprecated API)."""

    def __init__(self) -> None:
        self.broker = None
        self.id = None
        self.error = None
        self.state = None
        self.protocol_type = None
        self.protocol = None
        self.members: list[GroupMember] = []

    def __repr__(self) -> str:
        return f"GroupMetadata({self.id})"
