"""Kafka framing: size-prefixed frames, request headers, response headers, scatter-gather sends.

A Kafka connection carries frames: an int32 size (big-endian) followed by that many bytes. A
request frame is a request header then the request body; a response frame is a response header
then the response body (https://kafka.apache.org/protocol#protocol_messages).

  - Request header v1: api key int16, api version int16, correlation id int32, client id
    (nullable int16 string, even in flexible requests). v2 adds tagged fields (flexible
    requests; none is defined, so all are skipped, as unknown tags must be). v0 (no client id)
    only ever served ControlledShutdown v0, which this server does not implement, so a request
    whose schema kio does not know is rejected before its header is read past the first 8
    bytes. The header is read here (`read_header`); the body with kio's reader, which knows the
    body's schema (kio refuses tagged fields its schema does not define: such a request is
    malformed and closes the connection).
  - Response header v0: correlation id. v1 adds tagged fields; flexible responses use it,
    except ApiVersions, whose response header is always v0 (so a client that does not know the
    server's versions can read it).

`FrameReader` reads frames from a non-blocking socket through the event loop. The size prefix is
checked against `socket.request.max.bytes` *before* any of the body is read or allocated;
small frames come out of one reusable read buffer, large ones are received straight into
their own buffer. `encode_response` serializes a kio response with kio's writer into a
`ChunkBuffer`, which keeps large bytes-like values (the record sets of a Fetch response, which
are memoryviews of segment mmaps) as separate chunks instead of copying them; `send_chunks`
then writes the frame with `sendmsg` (one gather write, no copy in Python).

Invariants: a frame is returned whole or not at all; a size outside [HEADER_MIN, max] raises
FrameError before the body is touched; a response frame's size prefix equals the sum of its
chunks.

Thread-safety: a FrameReader and the buffers belong to one connection task; the functions are
reentrant.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass

from wire import length_guard, schemas

SIZE = struct.Struct(">i")
FIXED_HEADER = struct.Struct(">hhi")          # api key, api version, correlation id
CLIENT_ID_LENGTH = struct.Struct(">h")
HEADER_MIN = FIXED_HEADER.size                # 8 bytes: a frame smaller cannot be a request
READ_BUFFER_BYTES = 64 * 1024
INLINE_CHUNK_MAX = 16 * 1024                  # larger values become their own chunk (no copy)
IOV_MAX = 1024                                # sendmsg's buffer-count limit on Linux
API_VERSIONS_KEY = 18


class FrameError(Exception):
    """The byte stream is not valid Kafka framing (size out of range, truncated frame)."""


class FrameTooLarge(FrameError):
    """A size prefix above socket.request.max.bytes."""


class MalformedRequest(Exception):
    """A request header or body that kio cannot parse, or an API/version it has no schema
    for. `correlation_id`, `api_key` and `api_version` are set when the fixed header was
    readable."""

    def __init__(self, message: str, api_key: int | None = None, api_version: int | None = None,
                 correlation_id: int | None = None):
        super().__init__(message)
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


@dataclass(frozen=True)
class Request:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body: object                       # the kio request entity
    size: int                          # frame size in bytes


def fixed_header(frame) -> tuple[int, int, int]:
    """(api key, api version, correlation id): the part every header version shares."""
    if len(frame) < HEADER_MIN:
        raise MalformedRequest(f"frame of {len(frame)} bytes is shorter than a request header")
    return FIXED_HEADER.unpack_from(frame, 0)


def read_header(frame, flexible: bool) -> tuple[str | None, int]:
    """(client id, body position) of a request header v1 (flexible=False) or v2: the fixed
    part, the client id (a nullable int16-length string in both), and in v2 the tagged fields,
    all skipped (none is defined; unknown tags must be ignored)."""
    pos = HEADER_MIN
    if len(frame) < pos + 2:
        raise ValueError("no room for the client id")
    (length,) = CLIENT_ID_LENGTH.unpack_from(frame, pos)
    pos += 2
    client_id = None
    if length >= 0:
        if len(frame) < pos + length:
            raise ValueError("client id runs past the frame")
        client_id = bytes(frame[pos:pos + length]).decode("utf-8", "replace")
        pos += length
    if flexible:
        pos = length_guard.skip_tagged_fields(frame, pos)
    return client_id, pos


def parse_request(frame: bytes | memoryview) -> Request:
    """Header and body of one request frame (the body read with kio). Raises
    MalformedRequest."""
    api_key, api_version, correlation_id = fixed_header(frame)
    try:
        cls = schemas.request_class(api_key, api_version)
    except schemas.UnknownApi as exc:
        raise MalformedRequest(str(exc), api_key, api_version, correlation_id) from None
    try:
        client_id, used = read_header(frame, cls.__flexible__)
        length_guard.check(cls, frame, used)      # before kio sizes anything from the frame
        body, _ = schemas.read(cls, frame, used)
    except Exception as exc:  # noqa: BLE001 - kio raises several types for bad bytes
        raise MalformedRequest(f"cannot parse {cls.__name__} v{api_version}: "
                               f"{type(exc).__name__}: {exc}", api_key, api_version,
                               correlation_id) from None
    return Request(api_key, api_version, correlation_id, client_id, body, len(frame))


def response_header_class(api_key: int, response_cls: type) -> type:
    """ApiVersions always answers with header v0; other flexible responses with v1."""
    if api_key == API_VERSIONS_KEY:
        from kio.schema.response_header.v0.header import ResponseHeader
        return ResponseHeader
    return response_cls.__header_schema__


class ChunkBuffer:
    """A write target for kio's writer that gathers small writes into one bytearray and keeps
    large bytes-like values (memoryviews of segment data) as their own chunks, uncopied."""

    __slots__ = ("chunks", "_current", "nbytes")

    def __init__(self) -> None:
        self.chunks: list = []
        self._current = bytearray()
        self.nbytes = 0

    def write(self, data) -> int:
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if size > INLINE_CHUNK_MAX:
            if self._current:
                self.chunks.append(self._current)
                self._current = bytearray()
            self.chunks.append(data)
        else:
            self._current += data
        self.nbytes += size
        return size

    def buffers(self) -> list:
        if self._current:
            self.chunks.append(self._current)
            self._current = bytearray()
        return self.chunks


def encode_response(api_key: int, correlation_id: int, response) -> list:
    """The chunks of one response frame: size prefix, response header, body."""
    out = ChunkBuffer()
    out.write(b"\0\0\0\0")
    header_cls = response_header_class(api_key, type(response))
    schemas.write(header_cls(correlation_id=correlation_id), out)
    schemas.write(response, out)
    chunks = out.buffers()
    first = chunks[0]
    SIZE.pack_into(first, 0, out.nbytes - SIZE.size)
    return chunks


class FrameReader:
    """Reads whole frames from a non-blocking socket via `loop.sock_recv_into`.

    `on_progress()` is called whenever bytes arrive (the connection's idle clock)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, max_bytes: int,
                 on_progress=None):
        self._loop = loop
        self._sock = sock
        self._max = max_bytes
        self._buf = bytearray(READ_BUFFER_BYTES)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._on_progress = on_progress or (lambda: None)

    async def _fill(self) -> int:
        """Receive into the free tail of the read buffer (compacting it first)."""
        if self._start:
            pending = self._end - self._start
            self._buf[:pending] = self._view[self._start:self._end]
            self._start, self._end = 0, pending
        n = await self._loop.sock_recv_into(self._sock, self._view[self._end:])
        if n:
            self._end += n
            self._on_progress()
        return n

    async def read_frame(self) -> bytes | memoryview | None:
        """The next frame's bytes (read-only), or None at a clean end of stream."""
        while self._end - self._start < SIZE.size:
            if not await self._fill():
                if self._end == self._start:
                    return None
                raise FrameError("connection closed inside a size prefix")
        (size,) = SIZE.unpack_from(self._buf, self._start)
        if size > self._max:
            raise FrameTooLarge(f"frame of {size} bytes exceeds socket.request.max.bytes "
                                f"({self._max})")
        if size < HEADER_MIN:
            raise FrameError(f"frame size {size} is smaller than a request header")
        self._start += SIZE.size
        if size <= len(self._buf):
            while self._end - self._start < size:
                if not await self._fill():
                    raise FrameError(f"connection closed inside a {size}-byte frame")
            frame = bytes(self._view[self._start:self._start + size])
            self._start += size
            return frame
        return await self._read_large(size)

    async def _read_large(self, size: int) -> memoryview:
        """A frame larger than the read buffer, received straight into its own buffer."""
        target = bytearray(size)
        view = memoryview(target)
        have = self._end - self._start
        view[:have] = self._view[self._start:self._end]
        self._start = self._end = 0
        while have < size:
            n = await self._loop.sock_recv_into(self._sock, view[have:])
            if not n:
                raise FrameError(f"connection closed inside a {size}-byte frame")
            have += n
            self._on_progress()
        return view.toreadonly()


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    future = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, lambda: future.done() or future.set_result(None))
    try:
        await future
    finally:
        loop.remove_writer(fd)


async def send_chunks(loop: asyncio.AbstractEventLoop, sock: socket.socket, chunks,
                      on_progress=None) -> None:
    """Write every chunk with gather writes (sendmsg), waiting for writability as needed."""
    pending = [c if isinstance(c, memoryview) else memoryview(c) for c in chunks]
    pending = [c for c in pending if c.nbytes]
    while pending:
        try:
            sent = sock.sendmsg(pending[:IOV_MAX])
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent and on_progress is not None:
            on_progress()
        while sent:
            head = pending[0]
            if sent >= head.nbytes:
                sent -= head.nbytes
                pending.pop(0)
            else:
                pending[0] = head[sent:]
                sent = 0
        if pending:
            await _writable(loop, sock)
