"""txn.AdminClient on a real Broker: futures keyed as confluent-kafka keys them, completed with
results or KafkaExceptions carrying Kafka's codes, for topics, partitions, configs, consumer
groups, group offsets, records and offsets."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from txn import (AdminClient, Consumer, KafkaError, KafkaException, NewPartitions, NewTopic,
                 Producer, TopicPartition)
from txn.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                       ConsumerGroupState, ConsumerGroupTopicPartitions, IsolationLevel,
                       OffsetSpec, ResourceType, TopicCollection)

from client_support import closing_all, conf, consume


def _code(future: Future) -> int:
    with pytest.raises(KafkaException) as excinfo:
        future.result()
    return excinfo.value.args[0].code()


@pytest.fixture
def admin(tmp_path):
    with AdminClient(conf(tmp_path)) as client:
        yield client


def test_create_topics_and_their_errors(admin):
    futures = admin.create_topics([NewTopic("a", 3), NewTopic("b"),
                                   NewTopic("c", 1, replication_factor=3),
                                   NewTopic("d", 1, config={"retention.ms": "x"}),
                                   NewTopic("bad name!", 1),
                                   NewTopic("e", replica_assignment=[[0], [0]])])
    assert set(futures) == {"a", "b", "c", "d", "bad name!", "e"}
    assert futures["a"].result() is None and futures["b"].result() is None
    assert _code(futures["c"]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert _code(futures["d"]) == KafkaError.INVALID_CONFIG
    assert _code(futures["bad name!"]) == KafkaError.TOPIC_EXCEPTION
    topics = admin.list_topics().topics
    assert len(topics["a"].partitions) == 3 and len(topics["b"].partitions) == 1
    assert len(topics["e"].partitions) == 2
    assert _code(admin.create_topics([NewTopic("a", 1)])["a"]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert admin.create_topics([NewTopic("v", 2)], validate_only=True)["v"].result() is None
    assert "v" not in admin.list_topics().topics
    with pytest.raises(TypeError):
        admin.create_topics(NewTopic("x"))


def test_delete_topics_and_create_again(admin):
    admin.create_topics([NewTopic("gone", 1)])["gone"].result()
    producer = Producer(conf(admin._broker.path))
    with closing_all(producer):
        producer.produce("gone", b"old")
        producer.flush(10)
    assert admin.delete_topics(["gone"])["gone"].result() is None
    assert _code(admin.delete_topics(["gone"])["gone"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert _code(admin.delete_topics(["__consumer_offsets"])["__consumer_offsets"]) == \
        KafkaError.INVALID_REQUEST
    admin.create_topics([NewTopic("gone", 1)])["gone"].result()
    assert admin._broker.partition("gone", 0).log_end_offset == 0


def test_create_partitions(admin):
    admin.create_topics([NewTopic("t", 1)])["t"].result()
    assert admin.create_partitions([NewPartitions("t", 4)])["t"].result() is None
    assert len(admin.list_topics("t").topics["t"].partitions) == 4
    assert _code(admin.create_partitions([NewPartitions("t", 2)])["t"]) == \
        KafkaError.INVALID_PARTITIONS
    assert _code(admin.create_partitions([NewPartitions("nope", 2)])["nope"]) == \
        KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_and_alter_topic_configs(admin):
    admin.create_topics([NewTopic("t", 1, config={"retention.ms": "1000"})])["t"].result()
    resource = ConfigResource(ResourceType.TOPIC, "t")
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["retention.ms"].value == "1000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert configs["segment.bytes"].is_default
    change = ConfigResource("topic", "t", incremental_configs=[
        ConfigEntry("segment.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    assert admin.incremental_alter_configs([change])[change].result() is None
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["segment.ms"].value == "60000" and configs["retention.ms"].is_default
    bad = ConfigResource("topic", "t", set_config={"no.such": "1"})
    assert _code(admin.alter_configs([bad])[bad]) == KafkaError.INVALID_CONFIG
    broker = ConfigResource(ResourceType.BROKER, "0")
    assert admin.describe_configs([broker])[broker].result()["num.partitions"].is_read_only
    missing = ConfigResource(ResourceType.TOPIC, "missing")
    assert _code(admin.describe_configs([missing])[missing]) == \
        KafkaError.UNKNOWN_TOPIC_OR_PART


def test_consumer_groups_listing_description_offsets_and_deletion(admin):
    admin.create_topics([NewTopic("t", 2)])["t"].result()
    directory = admin._broker.path
    consumer = Consumer(conf(directory, **{"group.id": "g1", "auto.offset.reset": "earliest",
                                           "heartbeat.interval.ms": 10}))
    with closing_all(consumer):
        consumer.subscribe(["t"])
        while not consumer.assignment():
            consumer.poll(0.05)
        listed = admin.list_consumer_groups().result().valid
        assert [(g.group_id, g.state) for g in listed] == [("g1", ConsumerGroupState.STABLE)]
        description = admin.describe_consumer_groups(["g1"])["g1"].result()
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == "range"
        (member,) = description.members
        assert member.member_id == consumer.memberid()
        assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1]
        consumer.commit(offsets=[TopicPartition("t", 0, 0)], asynchronous=False)
        assert _code(admin.delete_consumer_groups(["g1"])["g1"]) == KafkaError.NON_EMPTY_GROUP
    request = ConsumerGroupTopicPartitions("g1", [TopicPartition("t", 0, 7),
                                                  TopicPartition("t", 1, 9)])
    altered = admin.alter_consumer_group_offsets([request])["g1"].result()
    assert [tp.offset for tp in altered.topic_partitions] == [7, 9]
    listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g1")])["g1"]
    assert [(tp.partition, tp.offset) for tp in listed.result().topic_partitions] == \
        [(0, 7), (1, 9)]
    assert admin.delete_consumer_groups(["g1"])["g1"].result() is None
    empty = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g1")])["g1"]
    assert empty.result().topic_partitions == []
    dead = admin.describe_consumer_groups(["nobody"])["nobody"].result()
    assert dead.state == ConsumerGroupState.DEAD and dead.members == []


def test_delete_records_and_list_offsets(admin):
    admin.create_topics([NewTopic("t", 1)])["t"].result()
    producer = Producer(conf(admin._broker.path))
    with closing_all(producer):
        for i in range(10):
            producer.produce("t", b"v", timestamp=100 + i)
        producer.flush(10)
    tp = TopicPartition("t", 0)
    offsets = admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result()
    assert offsets.offset == 0
    assert admin.list_offsets({tp: OffsetSpec.latest()})[tp].result().offset == 10
    found = admin.list_offsets({tp: OffsetSpec.for_timestamp(104)})[tp].result()
    assert (found.offset, found.timestamp) == (4, 104)
    assert admin.list_offsets({tp: OffsetSpec.max_timestamp()},
                              isolation_level=IsolationLevel.READ_COMMITTED)[tp].result() \
        .offset == 9
    doomed = TopicPartition("t", 0, 6)
    assert admin.delete_records([doomed])[doomed].result().low_watermark == 6
    assert admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result().offset == 6
    beyond = TopicPartition("t", 0, 99)
    assert _code(admin.delete_records([beyond])[beyond]) == KafkaError.OFFSET_OUT_OF_RANGE
    consumer = Consumer(conf(admin._broker.path, **{"group.id": "r",
                                                    "auto.offset.reset": "earliest"}))
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, 0)])
        assert [m.offset() for m in consume(consumer, 4)] == [6, 7, 8, 9]


def test_describe_topics_and_cluster(admin):
    admin.create_topics([NewTopic("t", 2)])["t"].result()
    description = admin.describe_topics(TopicCollection(["t"]))["t"].result()
    assert description.name == "t" and not description.is_internal
    assert [p.id for p in description.partitions] == [0, 1]
    assert description.partitions[0].leader.id == 0
    cluster = admin.describe_cluster().result()
    assert cluster.cluster_id == admin.cluster_id() and [n.id for n in cluster.nodes] == [0]
    assert admin.poll(0) == 0


def test_clients_follow_a_topic_deleted_and_created_again(admin):
    directory = admin._broker.path
    admin.create_topics([NewTopic("t", 1)])["t"].result()
    producer = Producer(conf(directory))
    consumer = Consumer(conf(directory, **{"group.id": "g", "auto.offset.reset": "earliest"}))
    with closing_all(producer, consumer):
        consumer.assign([TopicPartition("t", 0)])
        producer.produce("t", b"before")
        producer.flush(10)
        assert [m.value() for m in consume(consumer, 1)] == [b"before"]
        admin.delete_topics(["t"])["t"].result()
        admin.create_topics([NewTopic("t", 2)])["t"].result()
        producer.produce("t", b"after", partition=1)
        producer.produce("t", b"again", partition=0)
        assert producer.flush(10) == 0
        consumer.seek(TopicPartition("t", 0, 0))
        assert [m.value() for m in consume(consumer, 1)] == [b"again"]
