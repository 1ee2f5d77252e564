"""Every advertised version of every API, exercised against a live server with kio-built
requests: the response parses with that version's schema and says what it should. This is
the proof that the ranges ApiVersions advertises are ranges the server implements."""

from __future__ import annotations

import uuid

import pytest
from wire_support import SERVER_CONFIG, KioClient, req, req_nested

from logstore import check
from logstore.record_batch import build_batch
from wire.registry import REGISTRY, ApiKey
from wire.runner import ServerThread

TOPIC = "sweep"
NONE = 0
MEMBER_ID_REQUIRED = 79
TOPIC_ALREADY_EXISTS = 36


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sweep"))
    server = ServerThread(path, SERVER_CONFIG).start()
    server.broker.store.create_topic(TOPIC, 2)
    yield server
    server.stop()
    assert check.check(path) == []


@pytest.fixture
def client(server):
    with KioClient("127.0.0.1", server.port) as c:
        yield c


def versions(key):
    spec = REGISTRY.spec(key)
    return range(spec.min_version, spec.max_version + 1)


def produce(client, version, batch, partition=0, transactional_id=None, acks=-1):
    body = req(0, version, transactional_id=transactional_id, acks=acks, timeout=10000,
               topic_data=[req_nested(0, version, "TopicProduceData", name=TOPIC,
                                      partition_data=[req_nested(
                                          0, version, "PartitionProduceData",
                                          index=partition, records=bytes(batch))])])
    return client.call(body).responses[0].partition_responses[0]


def test_produce_every_version(client):
    offsets = []
    for v in versions(ApiKey.PRODUCE):
        part = produce(client, v, build_batch([b"produce-v%d" % v]))
        assert part.error_code == NONE, v
        offsets.append(part.base_offset)
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


def test_fetch_every_version(client):
    produce(client, 9, build_batch([b"for-fetch"]), partition=1)
    for v in versions(ApiKey.FETCH):
        for isolation in (0, 1):
            body = req(1, v, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20,
                       isolation_level=isolation, session_id=0, session_epoch=-1,
                       forgotten_topics_data=[], rack_id="", topics=[req_nested(
                           1, v, "FetchTopic", topic=TOPIC, partitions=[req_nested(
                               1, v, "FetchPartition", partition=1, fetch_offset=0,
                               partition_max_bytes=1 << 20, current_leader_epoch=-1,
                               log_start_offset=-1, last_fetched_epoch=-1)])])
            part = client.call(body).responses[0].partitions[0]
            assert part.error_code == NONE and part.high_watermark >= 1, v
            assert b"for-fetch" in bytes(part.records), v
            assert (part.aborted_transactions is None) == (isolation == 0), v


def test_list_offsets_every_version(client):
    produce(client, 9, build_batch([b"x"]), partition=1)
    for v in versions(ApiKey.LIST_OFFSETS):
        found = {}
        for timestamp in (-1, -2):
            body = req(2, v, replica_id=-1, isolation_level=1, timeout=1000, topics=[
                req_nested(2, v, "ListOffsetsTopic", name=TOPIC, partitions=[req_nested(
                    2, v, "ListOffsetsPartition", partition_index=1, timestamp=timestamp,
                    current_leader_epoch=-1)])])
            part = client.call(body).topics[0].partitions[0]
            assert part.error_code == NONE, v
            found[timestamp] = part.offset
        assert found[-2] == 0 and found[-1] >= 1, (v, found)


def test_metadata_every_version(client, server):
    for v in versions(ApiKey.METADATA):
        named = client.call(req(3, v, topics=[req_nested(3, v, "MetadataRequestTopic",
                                                         name=TOPIC, topic_id=None)],
                                allow_auto_topic_creation=False,
                                include_cluster_authorized_operations=False,
                                include_topic_authorized_operations=False))
        assert [(b.node_id, b.port) for b in named.brokers] == [(0, server.port)], v
        (topic,) = named.topics
        assert topic.error_code == NONE and len(topic.partitions) == 2, v
        assert {p.leader_id for p in topic.partitions} == {0}, v
        every = client.call(req(3, v, topics=[] if v == 0 else None,
                                allow_auto_topic_creation=False,
                                include_cluster_authorized_operations=False,
                                include_topic_authorized_operations=False))
        assert TOPIC in {t.name for t in every.topics}, v


def test_metadata_creates_topics_only_when_allowed(client, server):
    body = req(3, 12, topics=[req_nested(3, 12, "MetadataRequestTopic", name="auto-no",
                                         topic_id=None)],
               allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    assert client.call(body).topics[0].error_code == 3
    body = req(3, 12, topics=[req_nested(3, 12, "MetadataRequestTopic", name="auto-yes",
                                         topic_id=None)],
               allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    topic = client.call(body).topics[0]
    assert topic.error_code == NONE and len(topic.partitions) == 1
    assert topic.topic_id != uuid.UUID(int=0)
    body = req(3, 12, topics=[req_nested(3, 12, "MetadataRequestTopic", name="bad/name",
                                         topic_id=None)],
               allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    assert client.call(body).topics[0].error_code == 17          # INVALID_TOPIC_EXCEPTION


def test_find_coordinator_every_version(client, server):
    for v in versions(ApiKey.FIND_COORDINATOR):
        for key_type in (0, 1):
            response = client.call(req(10, v, key="g", key_type=key_type,
                                       coordinator_keys=["g", "t"]))
            found = response.coordinators if v >= 4 else [response]
            assert [(c.error_code, c.node_id, c.port) for c in found] == \
                [(NONE, 0, server.port)] * len(found), v


def join(client, version, group):
    """(member id, generation) after joining `group` alone with JoinGroup `version`."""
    member = ""
    for _ in range(2):
        body = req(11, version, group_id=group, session_timeout=10000,
                   rebalance_timeout=10000, member_id=member, group_instance_id=None,
                   protocol_type="consumer", reason=None, protocols=[req_nested(
                       11, version, "JoinGroupRequestProtocol", name="range",
                       metadata=b"meta")])
        response = client.call(body)
        if response.error_code == MEMBER_ID_REQUIRED:
            assert version >= 4
            member = response.member_id
            continue
        assert response.error_code == NONE, version
        assert response.leader == response.member_id
        assert [m.metadata for m in response.members] == [b"meta"]
        return response.member_id, response.generation_id
    raise AssertionError("no member id after MEMBER_ID_REQUIRED")


def test_group_membership_every_version(client):
    for v in versions(ApiKey.JOIN_GROUP):
        group = f"members-v{v}"
        member, generation = join(client, v, group)
        sv = min(v, 5)
        synced = client.call(req(14, sv, group_id=group, generation_id=generation,
                                 member_id=member, group_instance_id=None,
                                 protocol_type="consumer", protocol_name="range",
                                 assignments=[req_nested(14, sv, "SyncGroupRequestAssignment",
                                                         member_id=member,
                                                         assignment=b"assigned")]))
        assert (synced.error_code, synced.assignment) == (NONE, b"assigned"), v
        hv = min(v, 4)
        beat = client.call(req(12, hv, group_id=group, generation_id=generation,
                               member_id=member, group_instance_id=None))
        assert beat.error_code == NONE, v
        lv = min(v, 5)
        leave = client.call(req(13, lv, group_id=group, member_id=member, members=[
            req_nested(13, lv, "MemberIdentity", member_id=member, group_instance_id=None,
                       reason=None)] if lv >= 3 else None))
        assert leave.error_code == NONE, v
        if lv >= 3:
            assert [m.error_code for m in leave.members] == [NONE]


def commit(client, version, group, offset):
    body = req(8, version, group_id=group, generation_id_or_member_epoch=-1, member_id="",
               group_instance_id=None, retention_time=-1, topics=[req_nested(
                   8, version, "OffsetCommitRequestTopic", name=TOPIC, partitions=[
                       req_nested(8, version, "OffsetCommitRequestPartition",
                                  partition_index=0, committed_offset=offset,
                                  committed_leader_epoch=-1, committed_metadata="m")])])
    return client.call(body).topics[0].partitions[0].error_code


def fetch_committed(client, version, group):
    if version >= 8:
        body = req(9, version, require_stable=True, groups=[req_nested(
            9, version, "OffsetFetchRequestGroup", group_id=group, member_id=None,
            member_epoch=-1, topics=[req_nested(9, version, "OffsetFetchRequestTopics",
                                                name=TOPIC, partition_indexes=[0])])])
        topics = client.call(body).groups[0].topics
    else:
        body = req(9, version, group_id=group, require_stable=True, topics=[req_nested(
            9, version, "OffsetFetchRequestTopic", name=TOPIC, partition_indexes=[0])])
        topics = client.call(body).topics
    part = topics[0].partitions[0]
    return part.error_code, part.committed_offset, part.metadata


def test_offsets_every_version(client):
    for v in versions(ApiKey.OFFSET_COMMIT):
        assert commit(client, v, "offsets-g", 100 + v) == NONE, v
    for v in versions(ApiKey.OFFSET_FETCH):
        assert fetch_committed(client, v, "offsets-g") == (NONE, 109, "m"), v


def test_group_listing_every_version(client):
    join(client, 5, "listed-g")
    for v in versions(ApiKey.LIST_GROUPS):
        listed = client.call(req(16, v, states_filter=[], types_filter=[]))
        assert listed.error_code == NONE and "listed-g" in {g.group_id for g in listed.groups}
    for v in versions(ApiKey.DESCRIBE_GROUPS):
        (group,) = client.call(req(15, v, groups=["listed-g"],
                                   include_authorized_operations=False)).groups
        assert (group.error_code, group.group_state, len(group.members)) == \
            (NONE, "CompletingRebalance", 1), v
        assert (group.members[0].client_id, group.members[0].client_host) == \
            ("wire-test", "/127.0.0.1")


def test_api_versions_every_version(client):
    for v in versions(ApiKey.API_VERSIONS):
        response = client.call(req(18, v, client_software_name="sweep",
                                   client_software_version="1"))
        assert response.error_code == NONE
        assert len(response.api_keys) == len(REGISTRY.versions())


def test_create_and_delete_topics_every_version(client, server):
    for v in versions(ApiKey.CREATE_TOPICS):
        def create():
            return client.call(req(19, v, timeout=10000, validate_only=False, topics=[
                req_nested(19, v, "CreatableTopic", name=f"ct-v{v}", num_partitions=3,
                           replication_factor=1, assignments=[], configs=[
                               req_nested(19, v, "CreatableTopicConfig",
                                          name="retention.ms", value="3600000")])])).topics[0]
        assert create().error_code == NONE, v
        assert create().error_code == TOPIC_ALREADY_EXISTS, v
        assert server.broker.store.topic(f"ct-v{v}").config.retention_ms == 3600000
    for v in versions(ApiKey.DELETE_TOPICS):
        name = f"ct-v{min(v + 1, 7)}"
        if v >= 6:
            topics = [req_nested(20, v, "DeleteTopicState", name=name, topic_id=None)]
            body = req(20, v, timeout=10000, topics=topics)
        else:
            body = req(20, v, timeout=10000, topic_names=[name])
        assert client.call(body).responses[0].error_code == NONE, v
        assert not server.broker.store.has_topic(name)


def test_describe_configs_every_version(client):
    for v in versions(ApiKey.DESCRIBE_CONFIGS):
        body = req(32, v, include_synonyms=False, include_documentation=False, resources=[
            req_nested(32, v, "DescribeConfigsResource", resource_type=2, resource_name=TOPIC,
                       configuration_keys=None),
            req_nested(32, v, "DescribeConfigsResource", resource_type=4, resource_name="0",
                       configuration_keys=["transaction.max.timeout.ms"])])
        topic, broker = client.call(body).results
        assert topic.error_code == NONE and "segment.bytes" in {c.name for c in topic.configs}
        assert [(c.name, c.value) for c in broker.configs] == \
            [("transaction.max.timeout.ms", "900000")]


def transaction(client, v, tid):
    """One committed transaction with every transactional API at (about) version v."""
    init = client.call(req(22, v, transactional_id=tid, transaction_timeout=60000,
                           producer_id=-1, producer_epoch=-1))
    assert init.error_code == NONE, v
    pid, epoch = init.producer_id, init.producer_epoch
    av = min(v, 3)
    added = client.call(req(24, av, v3_and_below_transactional_id=tid,
                            v3_and_below_producer_id=pid, v3_and_below_producer_epoch=epoch,
                            v3_and_below_topics=[req_nested(24, av, "AddPartitionsToTxnTopic",
                                                            name=TOPIC, partitions=[0])]))
    assert added.results_by_topic_v3_and_below[0].results_by_partition[0] \
        .partition_error_code == NONE, v
    batch = build_batch([b"txn-v%d" % v], producer_id=pid, producer_epoch=epoch,
                        base_sequence=0, transactional=True)
    assert produce(client, 9, batch, transactional_id=tid).error_code == NONE, v
    ov = min(v, 4)
    assert client.call(req(25, ov, transactional_id=tid, producer_id=pid,
                           producer_epoch=epoch, group_id=f"txn-g{v}")).error_code == NONE
    committed = client.call(req(28, min(v, 5), transactional_id=tid, group_id=f"txn-g{v}",
                                producer_id=pid, producer_epoch=epoch, generation_id=-1,
                                member_id="", group_instance_id=None, topics=[req_nested(
                                    28, min(v, 5), "TxnOffsetCommitRequestTopic", name=TOPIC,
                                    partitions=[req_nested(
                                        28, min(v, 5), "TxnOffsetCommitRequestPartition",
                                        partition_index=0, committed_offset=7,
                                        committed_leader_epoch=-1,
                                        committed_metadata=None)])]))
    assert committed.topics[0].partitions[0].error_code == NONE, v
    ended = client.call(req(26, v, transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                            committed=True))
    assert ended.error_code == NONE, v
    return pid, epoch, ended


def test_transaction_apis_every_version(client):
    for v in versions(ApiKey.END_TXN):
        pid, epoch, ended = transaction(client, v, f"sweep-t{v}")
        if v >= 5:
            assert (ended.producer_id, ended.producer_epoch) == (pid, epoch + 1)
        assert fetch_committed(client, 9, f"txn-g{v}")[:2] == (NONE, 7)
    for v in range(5, 6):                                       # InitProducerId v5 too
        init = client.call(req(22, v, transactional_id=None, transaction_timeout=60000,
                               producer_id=-1, producer_epoch=-1))
        assert init.error_code == NONE and init.producer_epoch == 0
    described = client.call(req(65, 0, transactional_ids=["sweep-t0", "nobody"]))
    assert [(t.transactional_id, t.error_code, t.transaction_state)
            for t in described.transaction_states] == \
        [("sweep-t0", NONE, "CompleteCommit"), ("nobody", 105, "")]
    for v in versions(ApiKey.LIST_TRANSACTIONS):
        listed = client.call(req(66, v, state_filters=["CompleteCommit", "Bogus"],
                                 producer_id_filters=[], duration_filter=-1,
                                 transactional_id_pattern="sweep-t[0-3]" if v >= 2 else None))
        names = sorted(t.transactional_id for t in listed.transaction_states)
        assert names == (["sweep-t0", "sweep-t1", "sweep-t2", "sweep-t3"] if v >= 2 else
                         [f"sweep-t{i}" for i in versions(ApiKey.END_TXN)])
        assert listed.unknown_state_filters == ("Bogus",)
    producers = client.call(req(61, 0, topics=[req_nested(61, 0, "TopicRequest", name=TOPIC,
                                                          partition_indexes=[0])]))
    states = producers.topics[0].partitions[0].active_producers
    assert len(states) >= len(versions(ApiKey.END_TXN))
    assert all(s.current_txn_start_offset == -1 for s in states)
