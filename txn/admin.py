"""The embedded `AdminClient`: confluent_kafka.admin.AdminClient over a logstore directory.

Every operation runs at once on the caller's thread against the shared Broker and answers
with what confluent-kafka answers: a dict of concurrent.futures.Future keyed as confluent-kafka
keys them (topic name, ConfigResource, group id, TopicPartition), or one Future, already
completed with the result or with a KafkaException carrying Kafka's error code
(TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PART, INVALID_PARTITIONS, INVALID_CONFIG, ...).

Offered: create_topics, delete_topics, create_partitions, list_topics, cluster_id,
describe_configs, alter_configs, incremental_alter_configs (topic configs), describe_topics,
describe_cluster, list_consumer_groups, describe_consumer_groups, list_consumer_group_offsets,
alter_consumer_group_offsets, delete_consumer_groups, delete_records, list_offsets,
list_groups, poll. ACLs, SCRAM credentials and leader elections have no meaning for one
embedded broker and are not offered. The value types (NewTopic, ConfigResource,
ConsumerGroupDescription, OffsetSpec, ...) mirror confluent-kafka's attributes; they live in
txn/admin_types.py and are re-exported here.

The embedded store is one broker (id 0): a replication factor other than -1 or 1 is
INVALID_REPLICATION_FACTOR; broker configs are read-only (set them with `broker.` keys when
the directory is first opened).

confluent-kafka's AdminClient has no close(): this one releases the engine when it is garbage
collected or at the end of a `with` block.

Thread-safety: every method may be called from any thread.
"""

from __future__ import annotations

import weakref
from concurrent.futures import Future

from logstore.config import KEYS_BY_NAME as TOPIC_KEYS
from logstore.config import LogConfig
from logstore.errors import InvalidConfiguration, LogstoreError
from txn import consumer_protocol as cp
from txn.admin_types import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                             ConsumerGroupDescription, ConsumerGroupListing,
                             ConsumerGroupState, ConsumerGroupTopicPartitions,
                             ConsumerGroupType, DeletedRecords, DescribeClusterResult,
                             GroupMember, GroupMetadata, IsolationLevel,
                             ListConsumerGroupsResult, ListOffsetsResultInfo, MemberAssignment,
                             MemberDescription, NewPartitions, NewTopic, Node, OffsetSpec,
                             ResourceType, TopicCollection, TopicDescription,
                             TopicPartitionInfo)
from txn.client_config import open_broker, parse_config
from txn.kafka_error import KafkaError, KafkaException, error_from_exception
from txn.message import OFFSET_END, OFFSET_INVALID, TopicPartition
from txn.metadata import (EMBEDDED_BROKER_ID, EMBEDDED_HOST, EMBEDDED_PORT, BrokerMetadata,
                          ClusterMetadata, PartitionMetadata, TopicMetadata, cluster_metadata)

__all__ = [
    "AdminClient", "AlterConfigOpType", "BrokerMetadata", "ClusterMetadata", "ConfigEntry",
    "ConfigResource", "ConfigSource", "ConsumerGroupDescription", "ConsumerGroupListing",
    "ConsumerGroupState", "ConsumerGroupTopicPartitions", "ConsumerGroupType",
    "DeletedRecords", "DescribeClusterResult", "GroupMember", "GroupMetadata",
    "IsolationLevel", "ListConsumerGroupsResult", "ListOffsetsResultInfo", "MemberAssignment",
    "MemberDescription", "NewPartitions", "NewTopic", "Node", "OffsetSpec",
    "PartitionMetadata", "ResourceType", "TopicCollection", "TopicDescription",
    "TopicMetadata", "TopicPartitionInfo",
]

REPLICATION_FACTORS = (-1, 1)
GROUP_STATES = {"Empty": ConsumerGroupState.EMPTY, "Stable": ConsumerGroupState.STABLE,
                "PreparingRebalance": ConsumerGroupState.PREPARING_REBALANCING,
                "CompletingRebalance": ConsumerGroupState.COMPLETING_REBALANCING,
                "Dead": ConsumerGroupState.DEAD}
STATE_NAMES = {state: name for name, state in GROUP_STATES.items()}


def _done(result=None) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _failed(error: KafkaError) -> Future:
    future: Future = Future()
    future.set_exception(KafkaException(error))
    return future


def _run(call, *args) -> Future:
    """A Future with call(*args), or the KafkaException of the engine error it raised."""
    try:
        return _done(call(*args))
    except KafkaException as exc:
        future: Future = Future()
        future.set_exception(exc)
        return future
    except LogstoreError as exc:
        return _failed(error_from_exception(exc))


def _node() -> Node:
    return Node(EMBEDDED_BROKER_ID, EMBEDDED_HOST, EMBEDDED_PORT)


def _error(code: int, reason: str) -> KafkaException:
    return KafkaException(KafkaError(code, reason))


def _config_string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AdminClient:
    """confluent_kafka.admin.AdminClient over an embedded data directory (`log.dirs`)."""

    def __init__(self, conf: dict | None = None, /, **kwargs):
        cfg = parse_config(conf, kwargs, client="AdminClient")
        self._config = cfg
        self._broker = open_broker(cfg)
        self._release = weakref.finalize(self, self._broker.release)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self._release()

    def _check_open(self) -> None:
        if not self._release.alive:
            raise RuntimeError("AdminClient closed")

    # -- topics -----------------------------------------------------------------------------

    def create_topics(self, new_topics, **kwargs) -> dict[str, Future]:
        """{topic: Future(None)}; validate_only=True checks without creating."""
        self._check_open()
        _check_list(new_topics, NewTopic, "new_topics")
        validate_only = bool(kwargs.get("validate_only", False))
        return {t.topic: _run(self._create_topic, t, validate_only) for t in new_topics}

    def _create_topic(self, new: NewTopic, validate_only: bool) -> None:
        from logstore.store import validate_topic_name
        partitions = new.num_partitions
        if new.replica_assignment is not None:
            if any(list(replicas) != [EMBEDDED_BROKER_ID] for replicas in new.replica_assignment):
                raise _error(KafkaError.INVALID_REPLICA_ASSIGNMENT, "the embedded store has "
                             f"one broker ({EMBEDDED_BROKER_ID}): every partition's replicas "
                             f"must be [{EMBEDDED_BROKER_ID}]")
            partitions = len(new.replica_assignment)
        elif new.replication_factor not in REPLICATION_FACTORS:
            raise _error(KafkaError.INVALID_REPLICATION_FACTOR, f"Replication factor: "
                         f"{new.replication_factor} larger than available brokers: 1.")
        if partitions == -1:
            partitions = self._broker.config["num.partitions"]
        try:
            validate_topic_name(new.topic)
            LogConfig.from_dict(new.config, self._broker.store.default_config)
        except InvalidConfiguration as exc:
            raise _error(KafkaError.INVALID_CONFIG, str(exc)) from None
        if validate_only:
            if self._broker.store.has_topic(new.topic):
                raise _error(KafkaError.TOPIC_ALREADY_EXISTS,
                             f"Topic '{new.topic}' already exists.")
            return None
        self._broker.store.create_topic(new.topic, partitions, new.config)
        return None

    def delete_topics(self, topics, **kwargs) -> dict[str, Future]:
        """{topic: Future(None)}. Internal topics cannot be deleted."""
        self._check_open()
        _check_list(topics, str, "topics")
        return {topic: _run(self._delete_topic, topic) for topic in topics}

    def _delete_topic(self, topic: str) -> None:
        if topic.startswith("__"):
            raise _error(KafkaError.INVALID_REQUEST,
                         f"{topic} is an internal topic and cannot be deleted")
        self._broker.delete_topic(topic)

    def create_partitions(self, new_partitions, **kwargs) -> dict[str, Future]:
        """{topic: Future(None)}: grow topics to new_total_count partitions."""
        self._check_open()
        _check_list(new_partitions, NewPartitions, "new_partitions")
        validate_only = bool(kwargs.get("validate_only", False))
        return {p.topic: _run(self._create_partitions, p, validate_only)
                for p in new_partitions}

    def _create_partitions(self, new: NewPartitions, validate_only: bool) -> None:
        store = self._broker.store
        info = store.topic(new.topic)
        if validate_only:
            if new.new_total_count <= info.partitions:
                raise _error(KafkaError.INVALID_PARTITIONS, f"Topic currently has "
                             f"{info.partitions} partitions, which is higher than the "
                             f"requested {new.new_total_count}.")
            return None
        store.create_partitions(new.topic, new.new_total_count)
        return None

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        self._check_open()
        return cluster_metadata(self._broker, topic)

    def cluster_id(self, timeout: float = -1) -> str:
        return self._broker.store.cluster_id

    def describe_topics(self, topics: TopicCollection, **kwargs) -> dict[str, Future]:
        """{topic: Future(TopicDescription)}."""
        self._check_open()
        if not isinstance(topics, TopicCollection):
            raise TypeError("Expected input to be instance of TopicCollection")
        return {name: _run(self._describe_topic, name) for name in topics.topic_names}

    def _describe_topic(self, name: str) -> TopicDescription:
        info = self._broker.store.topic(name)
        node = _node()
        partitions = [TopicPartitionInfo(p, node, [node], [node])
                      for p in range(info.partitions)]
        return TopicDescription(name, info.topic_id, info.internal, partitions)

    def describe_cluster(self, **kwargs) -> Future:
        self._check_open()
        node = _node()
        return _done(DescribeClusterResult(node, [node], self._broker.store.cluster_id))

    def poll(self, timeout: float = -1) -> int:
        """No background events: every result is already in its Future."""
        return 0

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted for compatibility; the embedded store has no authentication."""

    # -- configs ----------------------------------------------------------------------------

    def describe_configs(self, resources, **kwargs) -> dict[ConfigResource, Future]:
        """{resource: Future({name: ConfigEntry})} for topics and the broker ("0")."""
        self._check_open()
        _check_list(resources, ConfigResource, "resources")
        return {r: _run(self._describe_config, r) for r in resources}

    def _describe_config(self, resource: ConfigResource) -> dict[str, ConfigEntry]:
        if resource.restype == ResourceType.TOPIC:
            info = self._broker.store.topic(resource.name)
            out = {}
            for name, value in info.config.to_dict().items():
                overridden = name in info.overrides
                out[name] = ConfigEntry(
                    name, _config_string(value),
                    ConfigSource.DYNAMIC_TOPIC_CONFIG if overridden
                    else ConfigSource.DEFAULT_CONFIG, is_default=not overridden)
            return out
        if resource.restype == ResourceType.BROKER:
            self._check_broker(resource)
            given = self._broker.requested_config
            return {name: ConfigEntry(name, _config_string(value),
                                      ConfigSource.STATIC_BROKER_CONFIG if name in given
                                      else ConfigSource.DEFAULT_CONFIG, is_read_only=True,
                                      is_default=name not in given)
                    for name, value in sorted(self._broker.config.values.items())}
        if resource.restype == ResourceType.GROUP:
            return {}
        raise _error(KafkaError.INVALID_REQUEST, f"cannot describe configs of a "
                     f"{resource.restype.name} resource")

    def _check_broker(self, resource: ConfigResource) -> None:
        if resource.name not in ("", str(EMBEDDED_BROKER_ID)):
            raise _error(KafkaError.INVALID_REQUEST, f"unknown broker {resource.name!r}: "
                         f"the embedded store is broker {EMBEDDED_BROKER_ID}")

    def alter_configs(self, resources, **kwargs) -> dict[ConfigResource, Future]:
        """{resource: Future(None)}: a topic's overrides become set_config (Kafka's
        deprecated AlterConfigs replaces them all)."""
        self._check_open()
        _check_list(resources, ConfigResource, "resources")
        validate_only = bool(kwargs.get("validate_only", False))
        return {r: _run(self._alter_config, r, dict(r.set_config_dict), validate_only)
                for r in resources}

    def incremental_alter_configs(self, resources, **kwargs) -> dict[ConfigResource, Future]:
        """{resource: Future(None)}: SET / DELETE topic config entries."""
        self._check_open()
        _check_list(resources, ConfigResource, "resources")
        validate_only = bool(kwargs.get("validate_only", False))
        return {r: _run(self._alter_incremental, r, validate_only) for r in resources}

    def _alter_incremental(self, resource: ConfigResource, validate_only: bool) -> None:
        if resource.restype != ResourceType.TOPIC:
            return self._alter_config(resource, {}, validate_only)
        overrides = dict(self._broker.store.topic(resource.name).overrides)
        for entry in resource.incremental_configs:
            operation = entry.incremental_operation
            if operation == AlterConfigOpType.SET:
                overrides[entry.name] = entry.value
            elif operation == AlterConfigOpType.DELETE:
                overrides.pop(entry.name, None)
            else:
                raise _error(KafkaError.INVALID_CONFIG, f"{operation} applies to list "
                             f"configs; {entry.name} is not one")
        return self._alter_config(resource, overrides, validate_only)

    def _alter_config(self, resource: ConfigResource, overrides: dict,
                      validate_only: bool) -> None:
        if resource.restype != ResourceType.TOPIC:
            raise _error(KafkaError.INVALID_REQUEST, "only topic configs can be altered: "
                         "broker settings are fixed when the directory is opened (pass "
                         "them as broker.<name> client configuration)")
        store = self._broker.store
        store.topic(resource.name)
        unknown = [name for name in overrides if name not in TOPIC_KEYS]
        try:
            if unknown:
                raise InvalidConfiguration(f"unknown topic config {unknown[0]!r}")
            LogConfig.from_dict(overrides, store.default_config)
        except InvalidConfiguration as exc:
            raise _error(KafkaError.INVALID_CONFIG, str(exc)) from None
        if not validate_only:
            store.alter_topic_config(resource.name, overrides)
        return None

    # -- consumer groups --------------------------------------------------------------------

    def list_consumer_groups(self, **kwargs) -> Future:
        """Future(ListConsumerGroupsResult); states={ConsumerGroupState} filters."""
        self._check_open()
        states = kwargs.get("states")
        if states is not None and not isinstance(states, set):
            raise TypeError("'states' must be a set")
        names = None if not states else {STATE_NAMES.get(s, "") for s in states}
        listed = self._broker.group_coordinator.list_groups(names)
        return _done(ListConsumerGroupsResult([
            ConsumerGroupListing(g.group_id, g.protocol_type == "",
                                 GROUP_STATES.get(g.state, ConsumerGroupState.UNKNOWN),
                                 ConsumerGroupType.CLASSIC) for g in listed]))

    def describe_consumer_groups(self, group_ids, **kwargs) -> dict[str, Future]:
        """{group_id: Future(ConsumerGroupDescription)} (unknown groups are DEAD)."""
        self._check_open()
        if not isinstance(group_ids, list):
            raise TypeError("Expected input to be list of group ids to be described")
        if not group_ids:
            raise ValueError("Expected at least one group to be described")
        described = self._broker.group_coordinator.describe_groups(group_ids)
        return {d.group_id: _done(_group_description(d)) for d in described}

    def list_groups(self, group: str | None = None, timeout: float = -1) -> list:
        """The deprecated list_groups(): GroupMetadata per group."""
        self._check_open()
        coordinator = self._broker.group_coordinator
        ids = [group] if group is not None else [g.group_id for g in coordinator.list_groups()]
        out = []
        for d in coordinator.describe_groups(ids):
            meta = GroupMetadata()
            meta.broker = _broker_metadata()
            meta.id, meta.state = d.group_id, d.state
            meta.protocol_type, meta.protocol = d.protocol_type, d.protocol_data
            for m in d.members:
                member = GroupMember()
                member.id, member.client_id, member.client_host = (m.member_id, m.client_id,
                                                                   m.client_host)
                member.metadata, member.assignment = m.metadata, m.assignment
                meta.members.append(member)
            out.append(meta)
        return out

    def list_consumer_group_offsets(self, list_consumer_group_offsets_request,
                                    **kwargs) -> dict[str, Future]:
        """{group_id: Future(ConsumerGroupTopicPartitions)} with committed offsets
        (require_stable=True: UNSTABLE_OFFSET_COMMIT while a transaction holds one)."""
        self._check_open()
        require_stable = bool(kwargs.get("require_stable", False))
        _check_list(list_consumer_group_offsets_request, ConsumerGroupTopicPartitions,
                    "list_consumer_group_offsets_request")
        return {r.group_id: _run(self._list_group_offsets, r, require_stable)
                for r in list_consumer_group_offsets_request}

    def _list_group_offsets(self, request: ConsumerGroupTopicPartitions,
                            require_stable: bool) -> ConsumerGroupTopicPartitions:
        wanted = (None if request.topic_partitions is None
                  else [(tp.topic, tp.partition) for tp in request.topic_partitions])
        found = self._broker.group_coordinator.fetch_offsets(request.group_id, wanted,
                                                             require_stable)
        out = []
        for (topic, partition), value in sorted(found.items()):
            if isinstance(value, Exception):
                out.append(TopicPartition._result(topic, partition,
                                                  error=error_from_exception(value)))
            else:
                out.append(TopicPartition._result(
                    topic, partition, value.offset if value.offset >= 0 else OFFSET_INVALID,
                    value.metadata or None,
                    value.leader_epoch if value.leader_epoch >= 0 else None))
        return ConsumerGroupTopicPartitions(request.group_id, out)

    def alter_consumer_group_offsets(self, alter_consumer_group_offsets_request,
                                     **kwargs) -> dict[str, Future]:
        """{group_id: Future(ConsumerGroupTopicPartitions)}: commit offsets for a group
        with no active members."""
        self._check_open()
        _check_list(alter_consumer_group_offsets_request, ConsumerGroupTopicPartitions,
                    "alter_consumer_group_offsets_request")
        return {r.group_id: _run(self._alter_group_offsets, r)
                for r in alter_consumer_group_offsets_request}

    def _alter_group_offsets(self, request) -> ConsumerGroupTopicPartitions:
        from txn.group_coordinator import OffsetAndMetadata
        offsets = {(tp.topic, tp.partition): OffsetAndMetadata(
            tp.offset, -1 if tp.leader_epoch is None else tp.leader_epoch, tp.metadata or "")
            for tp in request.topic_partitions or ()}
        results = self._broker.group_coordinator.commit_offsets(request.group_id, -1, "",
                                                                offsets)
        out = []
        for tp in request.topic_partitions or ():
            failure = results.get((tp.topic, tp.partition))
            out.append(TopicPartition._result(
                tp.topic, tp.partition, tp.offset, tp.metadata, tp.leader_epoch,
                None if failure is None else error_from_exception(failure)))
        return ConsumerGroupTopicPartitions(request.group_id, out)

    def delete_consumer_groups(self, group_ids, **kwargs) -> dict[str, Future]:
        """{group_id: Future(None)}: groups without members lose their offsets."""
        self._check_open()
        _check_list(group_ids, str, "group_ids")
        results = self._broker.group_coordinator.delete_groups(group_ids)
        return {g: _done() if results.get(g) is None
                else _failed(error_from_exception(results[g])) for g in group_ids}

    # -- records and offsets ----------------------------------------------------------------

    def delete_records(self, topic_partition_offsets, **kwargs) -> dict:
        """{TopicPartition: Future(DeletedRecords)}: move the log start offset up to
        tp.offset (OFFSET_END: the high watermark)."""
        self._check_open()
        _check_list(topic_partition_offsets, TopicPartition, "topic_partition_offsets")
        return {tp: _run(self._delete_records, tp) for tp in topic_partition_offsets}

    def _delete_records(self, tp: TopicPartition) -> DeletedRecords:
        log = self._broker.partition(tp.topic, tp.partition).log
        offset = log.high_watermark if tp.offset == OFFSET_END else tp.offset
        if offset < 0:
            raise _error(KafkaError.OFFSET_OUT_OF_RANGE, f"cannot delete records before "
                         f"offset {tp.offset}")
        return DeletedRecords(log.delete_records_before(offset))

    def list_offsets(self, topic_partition_offsets: dict, **kwargs) -> dict:
        """{TopicPartition: Future(ListOffsetsResultInfo)} for {TopicPartition: OffsetSpec};
        isolation_level=IsolationLevel.READ_COMMITTED makes latest() the last stable
        offset."""
        self._check_open()
        if not isinstance(topic_partition_offsets, dict):
            raise TypeError("Expected topic_partition_offsets to be a dict of "
                            "TopicPartition -> OffsetSpec")
        committed = kwargs.get("isolation_level") == IsolationLevel.READ_COMMITTED
        return {tp: _run(self._list_offset, tp, spec, committed)
                for tp, spec in topic_partition_offsets.items()}

    def _list_offset(self, tp: TopicPartition, spec: OffsetSpec,
                     committed: bool) -> ListOffsetsResultInfo:
        if not isinstance(spec, OffsetSpec):
            raise TypeError("Expected OffsetSpec values in topic_partition_offsets")
        target = self._broker.partition(tp.topic, tp.partition)
        value = spec._value
        if value == OffsetSpec.latest()._value:
            end = target.last_stable_offset if committed else target.high_watermark
            return ListOffsetsResultInfo(end, -1, -1)
        if value == OffsetSpec.earliest()._value:
            return ListOffsetsResultInfo(target.log_start_offset, -1, -1)
        found = target.log.offset_for_timestamp(value)
        if found is None:
            return ListOffsetsResultInfo(-1, -1, -1)
        return ListOffsetsResultInfo(found[0], found[1], -1)


def _check_list(values, kind: type, name: str) -> None:
    if not isinstance(values, list):
        raise TypeError(f"Expected {name} to be a list, got {type(values).__name__}")
    for value in values:
        if not isinstance(value, kind):
            raise TypeError(f"Expected {name} to hold {kind.__name__} objects, got "
                            f"{type(value).__name__}")


def _broker_metadata() -> BrokerMetadata:
    node = BrokerMetadata()
    node.id, node.host, node.port = EMBEDDED_BROKER_ID, EMBEDDED_HOST, EMBEDDED_PORT
    return node


def _group_description(described) -> ConsumerGroupDescription:
    members = []
    for m in described.members:
        partitions = []
        if described.protocol_type == cp.PROTOCOL_TYPE and m.assignment:
            partitions = [TopicPartition(t, p)
                          for t, p in cp.decode_assignment(m.assignment).partitions]
        members.append(MemberDescription(m.member_id, m.client_id, m.client_host,
                                         MemberAssignment(partitions), m.group_instance_id))
    return ConsumerGroupDescription(
        described.group_id, described.protocol_type == "", members, described.protocol_data,
        GROUP_STATES.get(described.state, ConsumerGroupState.UNKNOWN), _node(),
        type=ConsumerGroupType.CLASSIC)
