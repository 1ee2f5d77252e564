"""Framing: request headers v1/v2 from hand-built bytes, response header versions, the
zero-copy chunk buffer, the frame reader's limits and edge cases, gather writes."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
import threading

import pytest

from wire import framing, schemas
from wire.registry import ApiKey

API_VERSIONS = int(ApiKey.API_VERSIONS)
METADATA = int(ApiKey.METADATA)


def legacy_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def compact_string(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw) + 1]) + raw          # uvarint, < 128


def test_request_header_v1_is_read_from_hand_built_bytes():
    frame = struct.pack(">hhi", API_VERSIONS, 0, 7) + legacy_string("client-a")
    request = framing.parse_request(frame)
    assert (request.api_key, request.api_version, request.correlation_id) == (18, 0, 7)
    assert request.client_id == "client-a"
    assert request.size == len(frame)


def test_request_header_v2_with_a_null_client_id_and_an_unknown_tagged_field():
    tagged = bytes([1, 5, 2]) + b"zz"               # one field: tag 5, 2 bytes
    body = compact_string("sw") + compact_string("1.0") + b"\x00"
    frame = struct.pack(">hhih", API_VERSIONS, 3, 99, -1) + tagged + body
    request = framing.parse_request(frame)
    assert request.client_id is None
    assert request.correlation_id == 99
    assert request.body.client_software_name == "sw"
    assert request.body.client_software_version == "1.0"


def test_a_request_kio_has_no_schema_for_is_malformed_with_its_correlation_id():
    frame = struct.pack(">hhi", 0, 2, 41) + legacy_string("c")     # Produce v2: pre-v3
    with pytest.raises(framing.MalformedRequest) as caught:
        framing.parse_request(frame)
    assert (caught.value.api_key, caught.value.api_version) == (0, 2)
    assert caught.value.correlation_id == 41


def test_a_truncated_body_is_malformed():
    frame = struct.pack(">hhi", API_VERSIONS, 3, 1) + legacy_string("c") + b"\x00\x05ab"
    with pytest.raises(framing.MalformedRequest):
        framing.parse_request(frame)


def test_a_frame_shorter_than_the_fixed_header_is_malformed():
    with pytest.raises(framing.MalformedRequest):
        framing.parse_request(b"\x00\x12\x00")


# Frames that declare far more array items than they hold. kio's native reader reserves memory
# for the declared count first; without wire.length_guard the 2**40-ish reservation aborts the
# process (Rust's allocation-failure handler), so the frames are parsed in a child process and
# the child must come back with MalformedRequest for each. The first was found by the fuzzer:
# ListOffsets v9 whose topics compact array declares a count of about 24 billion.
HUGE_ARRAY_FRAMES = [
    bytes.fromhex("0002000900000007000466757a7a00ffffe98a83a995bfaf59d8d6cf89dae28b"),
    # Metadata v12 (flexible): topics compact array of 2**32 - 2 items, then nothing
    struct.pack(">hhih", 3, 12, 5, 1) + b"x" + b"\x00" + bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    # Produce v3 (legacy): one topic, then a partitions int32 array of 2**31 - 1 items
    struct.pack(">hhih", 0, 3, 5, 1) + b"x" + struct.pack(">hhii", -1, 1, 1000, 1)
    + legacy_string("t") + struct.pack(">i", 2**31 - 1),
    # DeleteTopics v6 (flexible): a topic_names-like nested string array of huge count
    struct.pack(">hhih", 20, 6, 5, 1) + b"x" + b"\x00" + bytes([0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
]
PARSE_IN_CHILD = """
import sys
from wire import framing
for text in sys.argv[1:]:
    try:
        framing.parse_request(bytes.fromhex(text))
    except framing.MalformedRequest as exc:
        print("malformed", exc, flush=True)
    else:
        print("parsed", flush=True)
"""


def test_a_frame_declaring_more_array_items_than_it_holds_is_malformed_not_fatal():
    done = subprocess.run([sys.executable, "-c", PARSE_IN_CHILD,
                           *(frame.hex() for frame in HUGE_ARRAY_FRAMES)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(HUGE_ARRAY_FRAMES), done.stdout
    assert all(line.startswith("malformed") for line in lines), lines
    assert any("runs past" in line or "bytes left" in line for line in lines), lines



def test_api_versions_responses_use_header_v0_even_when_flexible():
    response = schemas.build(schemas.response_class(API_VERSIONS, 3), error_code=0,
                             api_keys=[], throttle_time=0)
    frame = b"".join(bytes(c) for c in framing.encode_response(API_VERSIONS, 5, response))
    assert struct.unpack(">ii", frame[:8]) == (len(frame) - 4, 5)
    assert frame[8:10] == b"\x00\x00"              # the body starts right after: error code


def test_flexible_responses_use_header_v1_with_empty_tagged_fields():
    response = schemas.blank(schemas.response_class(METADATA, 9), 0)
    frame = b"".join(bytes(c) for c in framing.encode_response(METADATA, 6, response))
    assert struct.unpack(">ii", frame[:8]) == (len(frame) - 4, 6)
    assert frame[8] == 0                           # header tagged fields: none


def test_chunk_buffer_keeps_large_views_uncopied_and_small_writes_together():
    out = framing.ChunkBuffer()
    big = memoryview(bytearray(framing.INLINE_CHUNK_MAX + 1))
    out.write(b"ab")
    out.write(b"cd")
    out.write(big)
    out.write(b"ef")
    chunks = out.buffers()
    assert chunks[0] == bytearray(b"abcd")
    assert chunks[1] is big
    assert chunks[2] == bytearray(b"ef")
    assert out.nbytes == 6 + big.nbytes


def read_frames(payload_parts, max_bytes=1 << 20, pause=0.0):
    """Frames (or the exception) FrameReader reads from a socketpair fed with payload_parts."""
    async def run():
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        left.setblocking(False)

        def feed():
            try:
                for part in payload_parts:
                    right.sendall(part)
                    if pause:
                        threading.Event().wait(pause)
                right.shutdown(socket.SHUT_WR)
            except OSError:
                pass                 # the reader stopped early and closed its end
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        reader = framing.FrameReader(loop, left, max_bytes)
        frames = []
        try:
            while True:
                frame = await asyncio.wait_for(reader.read_frame(), 10)
                if frame is None:
                    return frames
                frames.append(bytes(frame))
        except framing.FrameError as exc:
            return frames, exc
        finally:
            left.close()
            feeder.join()            # `right` is closed only once the feeder is done with it
            right.close()
    return asyncio.run(run())


def frame_of(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def test_frames_split_byte_by_byte_and_packed_together_come_out_whole():
    a, b = b"A" * 20, b"B" * 9
    stream = frame_of(a) + frame_of(b)
    assert read_frames([stream[i:i + 1] for i in range(len(stream))], pause=0.001) == [a, b]
    assert read_frames([stream]) == [a, b]


def test_a_frame_larger_than_the_read_buffer_is_received_into_its_own_buffer():
    body = bytes(range(256)) * (framing.READ_BUFFER_BYTES // 256 + 3)
    small = b"S" * 10
    stream = frame_of(small) + frame_of(body) + frame_of(small)
    assert read_frames([stream[:70000], stream[70000:]]) == [small, body, small]


def test_an_oversized_size_prefix_fails_before_any_body_byte_arrives():
    frames, exc = read_frames([struct.pack(">i", 2048)], max_bytes=1024)
    assert frames == [] and isinstance(exc, framing.FrameTooLarge)


@pytest.mark.parametrize("size", [-1, 0, 7])
def test_a_size_below_a_request_header_is_a_framing_error(size):
    frames, exc = read_frames([struct.pack(">i", size) + b"x" * 8])
    assert frames == [] and isinstance(exc, framing.FrameError)


def test_end_of_stream_inside_a_frame_or_a_prefix_is_an_error_between_frames_is_not():
    assert read_frames([frame_of(b"x" * 8)]) == [b"x" * 8]
    frames, exc = read_frames([frame_of(b"x" * 8) + struct.pack(">i", 100) + b"y" * 10])
    assert frames == [b"x" * 8] and isinstance(exc, framing.FrameError)
    frames, exc = read_frames([b"\x00\x00"])
    assert frames == [] and isinstance(exc, framing.FrameError)


def test_send_chunks_writes_every_byte_through_a_small_socket_buffer():
    chunks = [bytes([i % 251]) * (100_000 + i) for i in range(12)]
    chunks.insert(3, b"")
    expected = b"".join(chunks)

    async def run():
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        left.setblocking(False)
        received = bytearray()

        def drain():
            while len(received) < len(expected):
                data = right.recv(65536)
                if not data:
                    break
                received.extend(data)
        reader = threading.Thread(target=drain)
        reader.start()
        await framing.send_chunks(loop, left, [memoryview(c) for c in chunks])
        reader.join(30)
        left.close()
        right.close()
        return bytes(received)
    assert asyncio.run(run()) == expected


def test_a_fetch_response_carries_the_segment_view_itself_not_a_copy():
    segment = memoryview(bytearray(b"\x07" * (framing.INLINE_CHUNK_MAX * 4)))
    part = schemas.build(schemas.nested(1, 12, "PartitionData"), partition_index=0,
                         error_code=0, high_watermark=1, last_stable_offset=1,
                         log_start_offset=0, aborted_transactions=None,
                         preferred_read_replica=-1, records=segment)
    topic = schemas.build(schemas.nested(1, 12, "FetchableTopicResponse"), topic="t",
                          partitions=[part])
    response = schemas.build(schemas.response_class(1, 12), throttle_time=0, error_code=0,
                             session_id=0, responses=[topic])
    chunks = framing.encode_response(1, 3, response)
    assert any(chunk is segment for chunk in chunks)
    frame = b"".join(bytes(c) for c in chunks)
    assert struct.unpack(">i", frame[:4])[0] == len(frame) - 4
    assert bytes(segment) in frame
