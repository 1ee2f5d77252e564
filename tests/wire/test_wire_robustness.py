"""Misbehaving clients on raw sockets: each gets an error response or a closed connection, the
server keeps serving everyone else, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import socket
import struct
import threading

from wire_support import (
    INTERNAL_PARTITIONS, KioClient, closed_by_peer, decode_response, encode_request,
    recv_frame, req, req_nested)

from logstore.record_batch import RecordBatch, build_batch
from txn.broker import Broker
from wire import schemas
from wire.registry import REGISTRY, ApiKey, ApiSpec

TOPIC = "robust"
NONE = 0
UNSUPPORTED_VERSION = 35


def api_versions(version: int = 3):
    return req(18, version, client_software_name="robust", client_software_version="1")


def produce_request(records: bytes, version: int = 9, acks: int = -1, topic: str = TOPIC,
                    partition: int = 0):
    return req(0, version, transactional_id=None, acks=acks, timeout=10000, topic_data=[
        req_nested(0, version, "TopicProduceData", name=topic, partition_data=[
            req_nested(0, version, "PartitionProduceData", index=partition,
                       records=records)])])


def still_serving(server) -> bool:
    with KioClient("127.0.0.1", server.port) as client:
        return client.call(api_versions()).error_code == NONE


def raw(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def test_an_oversized_request_closes_only_that_connection(make_server):
    server = make_server({"socket.request.max.bytes": 4096})
    bystander = KioClient("127.0.0.1", server.port)
    sock = raw(server)
    sock.sendall(struct.pack(">i", 1 << 30))           # 1 GiB announced, nothing sent
    assert closed_by_peer(sock)
    assert bystander.call(api_versions()).error_code == NONE
    big = produce_request(b"\0" * 8192)
    sock = raw(server)
    sock.sendall(encode_request(big, 1))
    assert closed_by_peer(sock)
    assert still_serving(server)
    bystander.close()


def test_malformed_frames_and_unknown_apis_close_the_connection(wire_server):
    garbage = struct.pack(">hhih", 3, 12, 1, -1) + os.urandom(3) + b"\xff" * 40
    too_short = struct.pack(">hh", 18, 3)
    unknown_key = struct.pack(">hhih", 30000, 0, 1, -1)
    unregistered = struct.pack(">hhih", 57, 0, 1, -1) + b"\x00" * 16   # kio knows it, we don't
    old_produce = struct.pack(">hhih", 0, 2, 1, -1) + b"\x00" * 16      # below Produce v3
    for frame in (garbage, too_short, unknown_key, unregistered, old_produce):
        sock = raw(wire_server)
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        assert closed_by_peer(sock), frame
    assert still_serving(wire_server)


def test_an_unsupported_api_versions_version_gets_the_list_and_the_connection_stays(
        wire_server):
    sock = raw(wire_server)
    frame = struct.pack(">hhih", 18, 99, 77, 1) + b"c" + b"\x00" + os.urandom(10)
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    correlation_id, response = decode_response(recv_frame(sock), 18, 0)
    assert correlation_id == 77 and response.error_code == UNSUPPORTED_VERSION
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == \
        REGISTRY.versions()
    sock.sendall(encode_request(api_versions(), 78))
    assert decode_response(recv_frame(sock), 18, 3)[1].error_code == NONE
    sock.close()


def test_stalled_and_idle_clients_are_closed_while_long_polls_are_not(make_server):
    server = make_server({"connections.max.idle.ms": 300})
    server.broker.store.create_topic(TOPIC, 1)
    stalled = raw(server)
    whole = encode_request(api_versions(), 1)
    stalled.sendall(whole[:len(whole) // 2])           # half a request, then nothing
    idle = raw(server)
    with KioClient("127.0.0.1", server.port) as poller:
        fetch = req(1, 12, replica_id=-1, max_wait=1500, min_bytes=1, max_bytes=1 << 20,
                    isolation_level=0, session_id=0, session_epoch=-1,
                    forgotten_topics_data=[], rack_id="", topics=[req_nested(
                        1, 12, "FetchTopic", topic=TOPIC, partitions=[req_nested(
                            1, 12, "FetchPartition", partition=0, fetch_offset=0,
                            partition_max_bytes=1 << 20, current_leader_epoch=-1,
                            log_start_offset=-1, last_fetched_epoch=-1)])])
        response = poller.call(fetch)                  # waits past the idle limit
        assert response.responses[0].partitions[0].error_code == NONE
        assert closed_by_peer(stalled) and closed_by_peer(idle)
        assert poller.call(api_versions()).error_code == NONE


def test_a_client_dropping_mid_request_changes_nothing(wire_server):
    wire_server.broker.store.create_topic(TOPIC, 1)
    frame = encode_request(produce_request(bytes(build_batch([b"half"]))), 1)
    sock = raw(wire_server)
    sock.sendall(frame[:len(frame) - 5])
    sock.close()
    with KioClient("127.0.0.1", wire_server.port) as client:
        part = client.call(produce_request(bytes(build_batch([b"whole"]))))
        part = part.responses[0].partition_responses[0]
        assert (part.error_code, part.base_offset) == (NONE, 0)


def test_pipelined_requests_are_answered_in_order(wire_server):
    wire_server.broker.store.create_topic(TOPIC, 1)
    bodies = []
    for i in range(60):
        if i % 3 == 0:
            bodies.append(produce_request(bytes(build_batch([b"p%d" % i])), acks=1))
        elif i % 3 == 1:
            bodies.append(req(3, 12, topics=None, allow_auto_topic_creation=False,
                              include_topic_authorized_operations=False))
        else:
            bodies.append(api_versions())
    sock = raw(wire_server)
    sock.sendall(b"".join(encode_request(b, i + 1) for i, b in enumerate(bodies)))
    offsets = []
    for i, body in enumerate(bodies):
        correlation_id, response = decode_response(recv_frame(sock), type(body).__api_key__,
                                                   type(body).__version__)
        assert correlation_id == i + 1
        if i % 3 == 0:
            offsets.append(response.responses[0].partition_responses[0].base_offset)
    assert offsets == list(range(20))
    sock.close()


def test_a_failing_handler_gets_an_error_response_and_the_server_goes_on(wire_server,
                                                                        monkeypatch):
    async def broken(ctx, request):
        raise RuntimeError("a bug in a handler")
    spec = REGISTRY.spec(ApiKey.LIST_GROUPS)
    monkeypatch.setitem(REGISTRY._specs, int(ApiKey.LIST_GROUPS),
                        ApiSpec(spec.api_key, spec.name, spec.min_version, spec.max_version,
                                broken))
    with KioClient("127.0.0.1", wire_server.port) as client:
        for version in (0, 5):
            response = client.call(req(16, version, states_filter=[], types_filter=[]))
            assert response.error_code == schemas.UNKNOWN_SERVER_ERROR
            assert response.groups == ()
        assert client.call(api_versions()).error_code == NONE


def test_acks_0_sends_nothing_back_and_closes_the_connection_on_failure(wire_server):
    wire_server.broker.store.create_topic(TOPIC, 1)
    sock = raw(wire_server)
    ok = produce_request(bytes(build_batch([b"fire-and-forget"])), acks=0)
    sock.sendall(encode_request(ok, 1) + encode_request(api_versions(), 2))
    correlation_id, _ = decode_response(recv_frame(sock), 18, 3)
    assert correlation_id == 2                          # no response to request 1
    bad = produce_request(bytes(build_batch([b"nowhere"])), acks=0, topic="no-such-topic")
    sock.sendall(encode_request(bad, 3))
    assert closed_by_peer(sock)
    assert wire_server.broker.partition(TOPIC, 0).high_watermark == 1


def test_invalid_acks_and_corrupt_batches_get_partition_errors(wire_server):
    wire_server.broker.store.create_topic(TOPIC, 1)
    batch = bytearray(build_batch([b"v"]))
    corrupt = bytearray(batch)
    corrupt[-1] ^= 0xFF                                  # the CRC no longer matches
    with KioClient("127.0.0.1", wire_server.port) as client:
        bad_acks = client.call(produce_request(bytes(batch), acks=2))
        assert bad_acks.responses[0].partition_responses[0].error_code == 21
        crc = client.call(produce_request(bytes(corrupt)))
        assert crc.responses[0].partition_responses[0].error_code == 2      # CORRUPT_MESSAGE
        two = client.call(produce_request(bytes(batch) + bytes(batch)))
        assert two.responses[0].partition_responses[0].error_code in (2, 87)
        unknown = client.call(produce_request(bytes(batch), partition=5))
        assert unknown.responses[0].partition_responses[0].error_code == 3
    assert wire_server.broker.partition(TOPIC, 0).high_watermark == 0


def test_nothing_acknowledged_is_lost_while_others_misbehave(wire_server, data_dir):
    wire_server.broker.store.create_topic(TOPIC, 2)
    acked: dict[tuple[int, int], bytes] = {}
    lock = threading.Lock()

    def producer(worker: int) -> None:
        with KioClient("127.0.0.1", wire_server.port) as client:
            for i in range(40):
                value = b"w%d-%d" % (worker, i)
                part = client.call(produce_request(bytes(build_batch([value])),
                                                   partition=worker % 2))
                part = part.responses[0].partition_responses[0]
                assert part.error_code == NONE
                with lock:
                    acked[(worker % 2, part.base_offset)] = value

    def abuser() -> None:
        for i in range(40):
            sock = raw(wire_server)
            sock.sendall(struct.pack(">i", 64) + os.urandom(30 + i % 20))
            sock.close()
    threads = [threading.Thread(target=producer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=abuser) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(acked) == 160
    wire_server.stop()
    broker = Broker(data_dir, INTERNAL_PARTITIONS)
    try:
        for (partition, offset), value in acked.items():
            records = broker.partition(TOPIC, partition).fetch(offset, 1 << 16).records
            batch = RecordBatch(records)
            assert batch.base_offset == offset
            assert [r.value for r in batch.records()] == [value]
    finally:
        broker.close()
