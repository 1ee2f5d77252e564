"""Helpers for the wire tests: a raw kio client, a server subprocess, a Produce tap, waiting.

  - `KioClient`: a blocking socket client speaking the protocol with kio's classes, for tests
    that need exact versions and fields (real clients choose their own);
  - `req(key, version, **fields)` / `req_nested(key, version, name, **fields)`: kio request
    entities (fields the version lacks are dropped, as wire.schemas.build does);
  - `ServeProcess`: `python -m wire.cli` in a subprocess on a given dir and port, waiting for
    its "listening on" line; `kill9()` and `stop()`;
  - `ProduceTap`: a TCP proxy in front of a server that records the record batches of every
    Produce request a client sends through it (the server must advertise the tap's port);
  - `free_port()`, `wait_until(predicate)`.
"""

from __future__ import annotations

import io
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from kio import index
from kio.static.constants import EntityType

from wire import framing, schemas

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOCKET_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0

# A consumer group here has members arriving over loopback: no initial rebalance delay, and
# a small minimum session timeout, so rebalances after a member leaves are quick. Four
# partitions per internal topic (Kafka: 50) keep the start, the stop and the data-directory
# check of every test's server short.
SERVER_CONFIG = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000,
                 "offsets.topic.num.partitions": 4, "transaction.state.log.num.partitions": 4}
INTERNAL_PARTITIONS = {k: v for k, v in SERVER_CONFIG.items() if k.endswith("num.partitions")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout_s: float = 30.0, interval_s: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(interval_s)


def req(api_key: int, version: int, /, **fields):
    return schemas.build(schemas.request_class(api_key, version), **fields)


def req_nested(api_key: int, version: int, struct_name: str, /, **fields):
    module = index.load_payload_module(api_key, version, EntityType.request)
    return schemas.build(getattr(module, struct_name), **fields)


def encode_request(body, correlation_id: int, client_id: str = "wire-test") -> bytes:
    cls = type(body)
    out = io.BytesIO()
    header = cls.__header_schema__(request_api_key=cls.__api_key__,
                                   request_api_version=cls.__version__,
                                   correlation_id=correlation_id, client_id=client_id)
    schemas.write(header, out)
    schemas.write(body, out)
    payload = out.getvalue()
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def decode_response(frame: bytes, api_key: int, version: int):
    """(correlation id, response entity) of one response frame."""
    cls = schemas.response_class(api_key, version)
    header_cls = framing.response_header_class(api_key, cls)
    header, used = schemas.read(header_cls, frame, 0)
    body, _ = schemas.read(cls, frame, used)
    return header.correlation_id, body


def closed_by_peer(sock: socket.socket, timeout_s: float = SOCKET_TIMEOUT_S) -> bool:
    """True once the server closed the connection (EOF or reset) within timeout_s."""
    sock.settimeout(timeout_s)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class KioClient:
    def __init__(self, host: str, port: int, client_id: str = "wire-test"):
        self.sock = socket.create_connection((host, port), timeout=SOCKET_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_id = client_id
        self._next_id = 1

    def send(self, body) -> int:
        correlation_id = self._next_id
        self._next_id += 1
        self.sock.sendall(encode_request(body, correlation_id, self.client_id))
        return correlation_id

    def receive(self, api_key: int, version: int, expect_id: int | None = None):
        correlation_id, body = decode_response(recv_frame(self.sock), api_key, version)
        if expect_id is not None:
            assert correlation_id == expect_id, (correlation_id, expect_id)
        return body

    def call(self, body):
        correlation_id = self.send(body)
        return self.receive(type(body).__api_key__, type(body).__version__, correlation_id)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> KioClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ServeProcess:
    """`logstore serve` (python -m wire.cli) as a child process."""

    def __init__(self, data_dir: str, port: int, config: dict | None = None):
        self.data_dir = data_dir
        self.port = port
        self.config = dict(config or {})
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        args = [sys.executable, "-m", "wire.cli", "--dir", self.data_dir, "--port",
                str(self.port), "--log-level", "warning"]
        for key, value in self.config.items():
            args += ["--config", f"{key}={value}"]
        self.proc = subprocess.Popen(args, cwd=REPO, stderr=subprocess.PIPE, text=True,
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"logstore serve exited: {''.join(self.output)}")
            self.output.append(line)
            if "listening on" in line:
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise RuntimeError("logstore serve did not start listening")

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.output.append(line)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


class ProduceTap:
    """A TCP proxy on `port` forwarding to `target_port`; records (topic, partition, batch
    bytes) of every Produce request passing through, in order."""

    def __init__(self, target_port: int, port: int | None = None):
        self.target_port = target_port
        self.port = port or free_port()
        self.batches: list[tuple[str, int, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> ProduceTap:
        self._thread.start()
        return self

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        buffered = bytearray()
        try:
            while not self._stop:
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                data = src.recv(1 << 20)
                if not data:
                    break
                dst.sendall(data)
                if requests:
                    buffered += data
                    self._parse(buffered)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _parse(self, buffered: bytearray) -> None:
        while len(buffered) >= 4:
            (size,) = struct.unpack_from(">i", buffered)
            if len(buffered) < 4 + size:
                return
            frame = bytes(buffered[4:4 + size])
            del buffered[:4 + size]
            if struct.unpack_from(">h", frame)[0] != 0:        # Produce only
                continue
            request = framing.parse_request(frame)
            for topic in request.body.topic_data:
                for part in topic.partition_data:
                    self.batches.append((topic.name, part.index, bytes(part.records)))

    def close(self) -> None:
        self._stop = True
        self._listener.close()
