"""list_topics() results for the embedded clients: confluent-kafka's ClusterMetadata,
BrokerMetadata, TopicMetadata and PartitionMetadata (confluent_kafka.admin._metadata), with the
same attributes, filled from the embedded store.

The embedded store is one broker (id 0, host "embedded", port -1) that leads every partition
and is its only replica and in-sync replica. `list_topics(topic)` of a topic that does not
exist answers it with UNKNOWN_TOPIC_OR_PART, as a Kafka broker's Metadata response does (no
auto-creation: the embedded clients' metadata requests never create topics).

Thread-safety: results are fresh objects; `cluster_metadata` reads the store's topic table
under its lock.
"""

from __future__ import annotations

from txn.kafka_error import KafkaError

EMBEDDED_BROKER_ID = 0
EMBEDDED_HOST = "embedded"
EMBEDDED_PORT = -1


class ClusterMetadata:
    """The cluster: its id, brokers and topics."""

    def __init__(self) -> None:
        self.cluster_id = None
        self.controller_id = -1
        self.brokers: dict[int, BrokerMetadata] = {}
        self.topics: dict[str, TopicMetadata] = {}
        self.orig_broker_id = -1
        self.orig_broker_name = None

    def __repr__(self) -> str:
        return f"ClusterMetadata({self.cluster_id})"

    def __str__(self) -> str:
        return str(self.cluster_id)


class BrokerMetadata:
    def __init__(self) -> None:
        self.id = -1
        self.host = None
        self.port = -1

    def __repr__(self) -> str:
        return f"BrokerMetadata({self.id}, {self.host}:{self.port})"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.id}"


class TopicMetadata:
    def __init__(self) -> None:
        self.topic: str | None = None
        self.partitions: dict[int, PartitionMetadata] = {}
        self.error: KafkaError | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            return f"TopicMetadata({self.topic}, {len(self.partitions)} partitions, {self.error})"
        return f"TopicMetadata({self.topic}, {len(self.partitions)} partitions)"

    def __str__(self) -> str:
        return str(self.topic)


class PartitionMetadata:
    def __init__(self) -> None:
        self.id = -1
        self.leader = -1
        self.replicas: list[int] = []
        self.isrs: list[int] = []
        self.error: KafkaError | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            return f"PartitionMetadata({self.id}, {self.error})"
        return f"PartitionMetadata({self.id})"

    def __str__(self) -> str:
        return f"{self.id}"


def _topic_metadata(name: str, partitions: int | None) -> TopicMetadata:
    topic = TopicMetadata()
    topic.topic = name
    if partitions is None:
        topic.error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
        return topic
    for number in range(partitions):
        partition = PartitionMetadata()
        partition.id = number
        partition.leader = EMBEDDED_BROKER_ID
        partition.replicas = [EMBEDDED_BROKER_ID]
        partition.isrs = [EMBEDDED_BROKER_ID]
        topic.partitions[number] = partition
    return topic


def cluster_metadata(broker, topic: str | None = None) -> ClusterMetadata:
    """Metadata of every topic (internal ones included, as Kafka lists them), or of `topic`."""
    result = ClusterMetadata()
    result.cluster_id = broker.store.cluster_id
    result.controller_id = EMBEDDED_BROKER_ID
    result.orig_broker_id = EMBEDDED_BROKER_ID
    result.orig_broker_name = f"{EMBEDDED_HOST}:{EMBEDDED_PORT}/{EMBEDDED_BROKER_ID}"
    node = BrokerMetadata()
    node.id, node.host, node.port = EMBEDDED_BROKER_ID, EMBEDDED_HOST, EMBEDDED_PORT
    result.brokers[EMBEDDED_BROKER_ID] = node
    topics = broker.store.topics()
    if topic is not None:
        info = topics.get(topic)
        result.topics[topic] = _topic_metadata(topic, None if info is None else info.partitions)
        return result
    for name, info in sorted(topics.items()):
        result.topics[name] = _topic_metadata(name, info.partitions)
    return result
