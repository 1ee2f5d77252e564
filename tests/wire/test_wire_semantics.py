"""Protocol semantics over raw kio requests: transaction versions per EndTxn version (Kafka
4.0), implicit partition adds of Produce v12 and TxnOffsetCommit v5, read_committed fetches
(LSO, aborted transactions), stable offset fetches, ListOffsets by timestamp, long polling and
fetch sizes."""

from __future__ import annotations

import threading

import pytest
from wire_support import KioClient, req, req_nested

from logstore.record_batch import RecordBatch, build_batch, iter_batches

TOPIC = "sem"
NONE = 0
OFFSET_OUT_OF_RANGE = 1
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
PRODUCER_FENCED = 90
UNSTABLE_OFFSET_COMMIT = 88
READ_UNCOMMITTED, READ_COMMITTED = 0, 1


class Session:
    """A raw transactional producer over one connection."""

    def __init__(self, server, tid: str):
        self.client = KioClient("127.0.0.1", server.port)
        self.tid = tid
        self.pid = self.epoch = -1
        self.sequence = {}

    def init(self, version: int = 4) -> None:
        response = self.client.call(req(22, version, transactional_id=self.tid,
                                        transaction_timeout=60000, producer_id=-1,
                                        producer_epoch=-1))
        assert response.error_code == NONE
        self.pid, self.epoch = response.producer_id, response.producer_epoch
        self.sequence = {}

    def add(self, *partitions: int, version: int = 3) -> int:
        response = self.client.call(req(
            24, version, v3_and_below_transactional_id=self.tid,
            v3_and_below_producer_id=self.pid, v3_and_below_producer_epoch=self.epoch,
            v3_and_below_topics=[req_nested(24, version, "AddPartitionsToTxnTopic",
                                            name=TOPIC, partitions=list(partitions))]))
        return response.results_by_topic_v3_and_below[0].results_by_partition[0] \
            .partition_error_code

    def produce(self, partition: int, values, version: int = 9, epoch: int | None = None,
                timestamps=None):
        seq = self.sequence.get(partition, 0)
        batch = build_batch(values, timestamps=timestamps, producer_id=self.pid,
                            producer_epoch=self.epoch if epoch is None else epoch,
                            base_sequence=seq, transactional=True)
        part = produce(self.client, bytes(batch), partition, version, self.tid)
        if part.error_code == NONE:
            self.sequence[partition] = seq + len(values)
        return part

    def end(self, commit: bool, version: int = 3):
        response = self.client.call(req(26, version, transactional_id=self.tid,
                                        producer_id=self.pid, producer_epoch=self.epoch,
                                        committed=commit))
        if response.error_code == NONE and version >= 5:
            if response.producer_id != self.pid:
                self.sequence = {}
            self.pid, self.epoch = response.producer_id, response.producer_epoch
        return response

    def close(self) -> None:
        self.client.close()


def produce(client, records: bytes, partition: int = 0, version: int = 9,
            transactional_id=None):
    body = req(0, version, transactional_id=transactional_id, acks=-1, timeout=10000,
               topic_data=[req_nested(0, version, "TopicProduceData", name=TOPIC,
                                      partition_data=[req_nested(
                                          0, version, "PartitionProduceData",
                                          index=partition, records=records)])])
    return client.call(body).responses[0].partition_responses[0]


def fetch_request(partitions, isolation=READ_UNCOMMITTED, max_wait=0, min_bytes=0,
                  max_bytes=1 << 24, partition_max=1 << 20):
    return req(1, 12, replica_id=-1, max_wait=max_wait, min_bytes=min_bytes,
               max_bytes=max_bytes, isolation_level=isolation, session_id=0,
               session_epoch=-1, forgotten_topics_data=[], rack_id="", topics=[req_nested(
                   1, 12, "FetchTopic", topic=TOPIC, partitions=[req_nested(
                       1, 12, "FetchPartition", partition=p, fetch_offset=offset,
                       partition_max_bytes=partition_max, current_leader_epoch=-1,
                       log_start_offset=-1, last_fetched_epoch=-1)
                       for p, offset in partitions])])


def fetch(client, partition=0, offset=0, isolation=READ_UNCOMMITTED, **kwargs):
    response = client.call(fetch_request([(partition, offset)], isolation, **kwargs))
    return response.responses[0].partitions[0]


def values_of(records) -> list[bytes]:
    return [r.value for b in iter_batches(memoryview(bytes(records)))
            if not b.is_control for r in b.records()]


@pytest.fixture
def server(wire_server):
    wire_server.broker.store.create_topic(TOPIC, 2)
    return wire_server


@pytest.fixture
def client(server):
    with KioClient("127.0.0.1", server.port) as c:
        yield c


def test_end_txn_below_v5_keeps_the_epoch_and_v5_bumps_it(server):
    classic = Session(server, "classic")
    classic.init()
    for _ in range(2):
        assert classic.add(0) == NONE
        assert classic.produce(0, [b"c"]).error_code == NONE
        response = classic.end(True, version=4)
        assert response.error_code == NONE
    assert classic.epoch == 0                              # no bump at the ends
    tv2 = Session(server, "tv2")
    tv2.init(version=5)
    first_epoch = tv2.epoch
    assert tv2.add(0) == NONE
    assert tv2.produce(0, [b"t"]).error_code == NONE
    old_epoch = tv2.epoch
    response = tv2.end(True, version=5)
    assert response.error_code == NONE
    assert (response.producer_id, response.producer_epoch) == (tv2.pid, first_epoch + 1)
    # a late write of the finished transaction is fenced by the bumped epoch
    late = tv2.produce(0, [b"late"], epoch=old_epoch)
    assert late.error_code in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED)
    classic.close()
    tv2.close()


def test_produce_v12_adds_partitions_implicitly_and_older_versions_must_add_first(
        server, client):
    tv2 = Session(server, "implicit")
    tv2.init(version=5)
    assert tv2.produce(1, [b"implicit"], version=12).error_code == NONE
    assert tv2.end(True, version=5).error_code == NONE
    assert values_of(fetch(client, 1, isolation=READ_COMMITTED).records) == [b"implicit"]
    classic = Session(server, "explicit")
    classic.init()
    assert classic.produce(1, [b"not-added"], version=11).error_code == INVALID_TXN_STATE
    tv2.close()
    classic.close()


def test_txn_offset_commit_v5_adds_the_offsets_partition_and_stays_unstable_until_commit(
        server, client):
    tv2 = Session(server, "offsets")
    tv2.init(version=5)
    assert tv2.produce(0, [b"x"], version=12).error_code == NONE

    def commit_offsets(version):
        return client.call(req(
            28, version, transactional_id="offsets", group_id="eos", producer_id=tv2.pid,
            producer_epoch=tv2.epoch, generation_id=-1, member_id="",
            group_instance_id=None, topics=[req_nested(
                28, version, "TxnOffsetCommitRequestTopic", name=TOPIC, partitions=[
                    req_nested(28, version, "TxnOffsetCommitRequestPartition",
                               partition_index=0, committed_offset=42,
                               committed_leader_epoch=-1, committed_metadata="")])]))
    assert commit_offsets(4).topics[0].partitions[0].error_code != NONE   # not added: v4
    assert commit_offsets(5).topics[0].partitions[0].error_code == NONE

    def stable_fetch():
        body = req(9, 8, require_stable=True, groups=[req_nested(
            9, 8, "OffsetFetchRequestGroup", group_id="eos", topics=[req_nested(
                9, 8, "OffsetFetchRequestTopics", name=TOPIC, partition_indexes=[0])])])
        part = client.call(body).groups[0].topics[0].partitions[0]
        return part.error_code, part.committed_offset
    assert stable_fetch()[0] == UNSTABLE_OFFSET_COMMIT
    assert tv2.end(True, version=5).error_code == NONE
    assert stable_fetch() == (NONE, 42)
    tv2.close()


def test_read_committed_stops_at_the_lso_and_lists_aborted_transactions(server, client):
    session = Session(server, "lso")
    session.init()
    produce(client, bytes(build_batch([b"before"])))
    assert session.add(0) == NONE
    assert session.produce(0, [b"aborted-1", b"aborted-2"]).error_code == NONE
    produce(client, bytes(build_batch([b"plain"])))       # after the open transaction
    open_committed = fetch(client, isolation=READ_COMMITTED)
    assert open_committed.last_stable_offset == 1 and open_committed.high_watermark == 4
    assert values_of(open_committed.records) == [b"before"]
    uncommitted = fetch(client)
    assert values_of(uncommitted.records) == [b"before", b"aborted-1", b"aborted-2", b"plain"]
    assert uncommitted.aborted_transactions is None
    assert session.end(False).error_code == NONE
    done = fetch(client, isolation=READ_COMMITTED)
    assert done.last_stable_offset == done.high_watermark == 5        # + the ABORT marker
    assert [(t.producer_id, t.first_offset) for t in done.aborted_transactions] == \
        [(session.pid, 1)]
    batches = list(iter_batches(memoryview(bytes(done.records))))
    assert [b.is_control for b in batches] == [False, False, False, True]
    later = fetch(client, offset=3, isolation=READ_COMMITTED)      # its marker is at 4
    assert [(t.producer_id, t.first_offset) for t in later.aborted_transactions] == \
        [(session.pid, 1)]
    assert fetch(client, offset=5, isolation=READ_COMMITTED).aborted_transactions == ()
    session.close()


def test_list_offsets_earliest_latest_by_timestamp_and_max_timestamp(server, client):
    base = 1_700_000_000_000
    for i, ts in enumerate([base, base + 10, base + 5, base + 20]):
        produce(client, bytes(build_batch([b"t%d" % i], timestamps=[ts])))
    session = Session(server, "list")
    session.init()
    session.add(0)
    session.produce(0, [b"open"], timestamps=[base + 30])

    def list_offset(timestamp, isolation=READ_UNCOMMITTED):
        body = req(2, 8, replica_id=-1, isolation_level=isolation, topics=[req_nested(
            2, 8, "ListOffsetsTopic", name=TOPIC, partitions=[req_nested(
                2, 8, "ListOffsetsPartition", partition_index=0, timestamp=timestamp,
                current_leader_epoch=-1)])])
        part = client.call(body).topics[0].partitions[0]
        assert part.error_code == NONE
        return part.offset, part.timestamp
    assert list_offset(-2) == (0, -1)
    assert list_offset(-1) == (5, -1)
    assert list_offset(-1, READ_COMMITTED) == (4, -1)              # the LSO
    assert list_offset(base + 6) == (1, base + 10)
    assert list_offset(base + 21) == (4, base + 30)
    assert list_offset(base + 21, READ_COMMITTED) == (-1, -1)      # only past the LSO
    assert list_offset(base + 99) == (-1, -1)
    assert list_offset(-3) == (4, base + 30)
    session.close()


def test_a_long_poll_is_woken_by_a_produce_on_another_connection(server, client):
    result = {}

    def poll():
        with KioClient("127.0.0.1", server.port) as poller:
            result["part"] = fetch(poller, max_wait=25000, min_bytes=1)
    waiter = threading.Thread(target=poll)
    waiter.start()
    threading.Event().wait(0.3)               # let the fetch park (correct without it too)
    produce(client, bytes(build_batch([b"wake-up"])))
    waiter.join(30)
    assert not waiter.is_alive(), "the long poll was not woken by the produce"
    assert values_of(result["part"].records) == [b"wake-up"]


def test_a_fetch_without_data_answers_empty_after_max_wait(client):
    part = fetch(client, max_wait=50, min_bytes=1)
    assert part.error_code == NONE and bytes(part.records) == b""


def test_fetch_sizes_first_batch_always_then_whole_batches_within_the_limits(server, client):
    big = bytes(build_batch([b"x" * 5000]))
    small = bytes(build_batch([b"y" * 10]))
    produce(client, big, 0)
    produce(client, small, 0)
    produce(client, small, 1)
    response = client.call(fetch_request([(0, 0), (1, 0)], max_bytes=1000,
                                         partition_max=1000))
    first, second = response.responses[0].partitions
    assert [len(b.buffer) for b in iter_batches(memoryview(bytes(first.records)))] == \
        [len(big)]                                          # over both limits: still one
    assert bytes(second.records) == b""                       # nothing left of max_bytes
    response = client.call(fetch_request([(0, 0), (1, 0)], max_bytes=len(big) + len(small),
                                         partition_max=1 << 20))
    first, second = response.responses[0].partitions
    assert len(bytes(first.records)) == len(big) + len(small)
    assert bytes(second.records) == b""
    response = client.call(fetch_request([(0, 1), (1, 0)], max_bytes=1 << 20))
    first, second = response.responses[0].partitions
    assert RecordBatch(bytes(first.records)).base_offset == 1
    assert values_of(second.records) == [b"y" * 10]


def test_fetching_past_the_end_is_offset_out_of_range(client):
    produce(client, bytes(build_batch([b"one"])))
    part = fetch(client, offset=5)
    assert part.error_code == OFFSET_OUT_OF_RANGE
    assert fetch(client, offset=1).error_code == NONE          # the end itself is fine


def test_fetch_sessions_are_declined(client):
    body = fetch_request([(0, 0)])
    response = client.call(body)
    assert response.session_id == 0
    incremental = req(1, 12, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20,
                      isolation_level=0, session_id=123, session_epoch=1,
                      forgotten_topics_data=[], rack_id="", topics=[])
    assert client.call(incremental).error_code == 70           # FETCH_SESSION_ID_NOT_FOUND
