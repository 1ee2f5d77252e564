"""Fuzzing the wire request decoder and the server behind it.

Goal: any bytes a client sends get a response or a closed connection: never a crash of the
server, a hang, an internal error, or harm to other clients (DESIGN.md, bad input).
Method:
  1. wire.framing.parse_request, in process, on random frames and on valid encodings of
     generated requests (hypothesis builds them from kio's classes for every registered API
     version) with bytes flipped, cut, spliced or zeroed: a Request or MalformedRequest,
     nothing else.
  2. A live WireServer (one per module, on a thread of this process). Frames that do not parse
     must close their connection (ApiVersions of an unsupported version gets its answer
     instead). Generated requests of the APIs whose effects are bounded must be answered (a
     Produce with acks=0 has no answer). Every fuzzed frame is followed on its connection by
     an ApiVersions request, so each case ends with that answer or with the close, never
     with waiting. The server must log no internal error; at the end a new client is served
     and the data directory checks clean.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import logging
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.static.primitive import Records

from logstore import check
from wire import framing, handlers, schemas  # noqa: F401 - handlers fill the registry
from wire.registry import REGISTRY, ApiKey
from wire.runner import ServerThread

st.register_type_strategy(Records, st.binary(max_size=400))

SERVER_CONFIG = {"offsets.topic.num.partitions": 1, "transaction.state.log.num.partitions": 1,
                 "group.initial.rebalance.delay.ms": 0}
SOCKET_TIMEOUT_S = 30.0           # a hang detector, not a measurement
FUZZ_CORRELATION_ID = 7
PROBE_CORRELATION_ID = 8
PARTITIONS_CAP = 4                # CreateTopics / CreatePartitions counts are capped
FRAMES = settings(max_examples=200, deadline=None)
SERVED = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
# Requests that would wait for other group members (bounded only by a timeout the request
# chooses) are not sent whole; their malformed encodings are.
WAITING_APIS = {ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP}
VERSIONS = [(spec.api_key, v) for spec in REGISTRY.specs()
            for v in range(spec.min_version, spec.max_version + 1)]
SENDABLE = [(key, v) for key, v in VERSIONS if key not in WAITING_APIS]


def encode(body, correlation_id: int) -> bytes:
    cls = type(body)
    out = io.BytesIO()
    header = cls.__header_schema__(request_api_key=cls.__api_key__,
                                   request_api_version=cls.__version__,
                                   correlation_id=correlation_id, client_id="fuzz")
    schemas.write(header, out)
    schemas.write(body, out)
    return out.getvalue()


def bounded(body):
    """A generated request whose effects stay small: no long poll, few partitions."""
    if type(body).__name__ == "FetchRequest":
        return dataclasses.replace(body, max_wait=datetime.timedelta(0))
    if type(body).__name__ == "CreateTopicsRequest":
        topics = tuple(dataclasses.replace(t, num_partitions=min(t.num_partitions,
                                                                 PARTITIONS_CAP))
                       for t in body.topics)
        return dataclasses.replace(body, topics=topics)
    return body


@st.composite
def requests(draw, versions=VERSIONS):
    key, version = draw(st.sampled_from(versions))
    return bounded(draw(st.from_type(schemas.request_class(key, version))))


@st.composite
def damaged(draw, frame: bytes):
    data = bytearray(frame)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "splice", "zero"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "splice":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "zero" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i: i + 4] = bytes(min(4, len(data) - i))
    return bytes(data)


@st.composite
def damaged_requests(draw):
    return draw(damaged(encode(draw(requests()), FUZZ_CORRELATION_ID)))


def parses(frame: bytes) -> bool:
    try:
        framing.parse_request(frame)
    except framing.MalformedRequest:
        return False
    return True


# ------------------------------------------------------------------------------------------------
# The decoder


@FRAMES
@given(st.one_of(st.binary(max_size=200), damaged_requests()))
def test_the_request_decoder_parses_or_raises_malformed_request(frame):
    parses(frame)                         # any other exception fails the test


@FRAMES
@given(requests())
def test_generated_requests_round_trip_through_the_decoder(body):
    request = framing.parse_request(encode(body, FUZZ_CORRELATION_ID))
    assert request.body == body and request.correlation_id == FUZZ_CORRELATION_ID


# ------------------------------------------------------------------------------------------------
# The server


class InternalErrors(logging.Handler):
    """Collects what the server logs at ERROR (handler bugs, internal errors)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("wire-fuzz") / "data")
    errors = InternalErrors()
    logging.getLogger("wire").addHandler(errors)
    started = ServerThread(data, SERVER_CONFIG).start()
    started.internal_errors = errors
    yield started
    try:
        assert still_serving(started), "the server stopped answering after the fuzzing"
    finally:
        started.stop()
        logging.getLogger("wire").removeHandler(errors)
    assert errors.messages == []
    assert check.check(data) == []


def probe() -> bytes:
    body = schemas.build(schemas.request_class(ApiKey.API_VERSIONS, 3),
                         client_software_name="fuzz", client_software_version="1")
    return encode(body, PROBE_CORRELATION_ID)


def exchange(server, frame: bytes) -> tuple[list[int], bool]:
    """Send the frame then an ApiVersions probe on one connection; read until the probe's
    answer or the close: (correlation ids answered, closed)."""
    answered = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        try:
            sock.sendall(struct.pack(">i", len(frame)) + frame)
            sock.sendall(struct.pack(">i", len(probe())) + probe())
            while PROBE_CORRELATION_ID not in answered:
                response = _recv_frame(sock)
                if response is None:
                    return answered, True
                answered.append(struct.unpack_from(">i", response)[0])
        except (ConnectionResetError, BrokenPipeError):
            return answered, True
    return answered, False


def _recv_frame(sock: socket.socket) -> bytes | None:
    size = _recv_exact(sock, 4)
    if size is None:
        return None
    return _recv_exact(sock, struct.unpack(">i", size)[0])


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))          # socket.timeout here is a hang: it fails
        if not chunk:
            return None
        data += chunk
    return data


def still_serving(server) -> bool:
    answered, closed = exchange(server, probe())
    return answered == [PROBE_CORRELATION_ID] and not closed


@SERVED
@given(st.one_of(st.binary(min_size=8, max_size=200), damaged_requests()))
def test_a_frame_that_does_not_parse_closes_its_connection(server, frame):
    if parses(frame):
        return                                    # parseable damage: the next test's kind
    answered, closed = exchange(server, frame)
    if len(frame) >= framing.HEADER_MIN and framing.fixed_header(frame)[0] == \
            ApiKey.API_VERSIONS:
        assert closed or answered[-1:] == [PROBE_CORRELATION_ID]
    else:
        assert closed and answered == []
    assert server.internal_errors.messages == []


@SERVED
@given(requests(SENDABLE))
def test_a_generated_request_is_answered_or_closes_its_connection(server, body):
    answered, closed = exchange(server, encode(body, FUZZ_CORRELATION_ID))
    no_answer = type(body).__name__ == "ProduceRequest" and body.acks == 0
    expected = [PROBE_CORRELATION_ID] if no_answer else [FUZZ_CORRELATION_ID,
                                                         PROBE_CORRELATION_ID]
    assert answered == expected or (closed and answered == expected[: len(answered)])
    assert server.internal_errors.messages == []
