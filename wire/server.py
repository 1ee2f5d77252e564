"""The asyncio Kafka server: a listening socket, one task per connection, ordered responses.

`WireServer(broker, host, port, config)` serves the Kafka protocol over one Broker (node 0 leads
every partition and is the group and transaction coordinator).

Per connection (`Connection.run`): a reader task reads frames (framing.FrameReader), parses each
request with kio and starts its handler as a task; the task goes into a bounded queue
(`queued.max.requests`), so a client that pipelines more stops being read. A writer task takes
the tasks in arrival order and writes each response as soon as it and every earlier one is
ready. Handlers of one connection start in arrival order and hold the connection's order lock
(RequestContext) until they finish or release it, so appends from one producer connection
happen in the order sent, while a Produce waiting for its fsync lets the next request go ahead.

Errors:
  - a frame larger than socket.request.max.bytes, a truncated frame, an unknown api key, or a
    version outside the registered range: the connection is closed (after the responses of the
    requests before it), as Kafka does; ApiVersions is the exception: an unsupported version
    gets UNSUPPORTED_VERSION with the supported list in a v0 response (KIP-511);
  - a handler that raises: the error is logged and the request gets an error response (the
    registry's error builder, or schemas.blank with the exception's Kafka code);
  - a handler raising CloseConnection (Produce acks=0 that failed): the connection is closed;
  - connections idle for connections.max.idle.ms (nothing in flight and no byte moved, which
    covers a client stalled mid-request) or blocked that long writing to a client that does
    not read, are closed by a periodic check.
None of these affects other connections.

Thread-safety: everything runs on the event loop thread except the Broker calls handlers run
on `executor` and the DataNotifier's bridge thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from logstore.errors import LogstoreError
from wire import framing, handlers, schemas
from wire.config import ServerConfig
from wire.context import RequestContext
from wire.notify import DataNotifier
from wire.registry import NO_RESPONSE, REGISTRY, ApiKey, CloseConnection

logger = logging.getLogger("wire.server")

LISTEN_BACKLOG = 1024
IDLE_CHECK_MAX_S = 1.0
_END = object()


class WireServer:
    def __init__(self, broker, host: str = "127.0.0.1", port: int = 9092,
                 config: ServerConfig | None = None, advertised_host: str | None = None,
                 advertised_port: int | None = None):
        self.broker = broker
        self.host = host
        self.requested_port = port
        self.config = config or ServerConfig()
        self.advertised_host = advertised_host or host
        self._advertised_port = advertised_port
        self.node_id = self.config.node_id
        self.port = None
        self.advertised_port = None
        self.executor: ThreadPoolExecutor | None = None
        self.notifier: DataNotifier | None = None
        self.connections: set[Connection] = set()
        self._sock: socket.socket | None = None
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.advertised_port = self._advertised_port or self.port
        self.executor = ThreadPoolExecutor(self.config.io_threads, thread_name_prefix="wire-io")
        self.notifier = DataNotifier(self.broker, loop)
        self.notifier.start()
        self._tasks = [asyncio.create_task(self._accept_loop(), name="wire-accept"),
                       asyncio.create_task(self._idle_loop(), name="wire-idle")]
        logger.info("serving the Kafka protocol on %s:%d (advertised %s:%d, node %d)",
                    self.host, self.port, self.advertised_host, self.advertised_port,
                    self.node_id)

    async def serve_forever(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(self._sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:               # EMFILE and friends: back off, keep serving
                logger.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock, peer)
            self.connections.add(conn)
            conn.task = asyncio.create_task(conn.run(), name=f"wire-conn-{peer}")

    async def _idle_loop(self) -> None:
        interval = min(self.config.idle_ms / 4000, IDLE_CHECK_MAX_S)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                reason = conn.expired(now, self.config.idle_ms / 1000)
                if reason:
                    logger.info("closing connection from %s: %s", conn.peer_text, reason)
                    conn.abort()

    async def close(self) -> None:
        """Stop accepting, close every connection, stop the worker threads."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        await asyncio.gather(*(c.task for c in conns if c.task), return_exceptions=True)
        if self.notifier is not None:
            self.notifier.close()
        if self.executor is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.executor.shutdown(wait=True))


class Connection:
    """One client connection (see the module docstring)."""

    def __init__(self, server: WireServer, sock: socket.socket, peer):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        # Kafka's clientHost (InetAddress.toString of the peer): "/127.0.0.1"
        self.client_host = f"/{peer[0]}" if isinstance(peer, tuple) else str(peer)
        self.task: asyncio.Task | None = None
        self.queue: asyncio.Queue = asyncio.Queue(server.config.queued_requests)
        self.order = asyncio.Lock()
        self.in_flight = 0
        self.last_active = time.monotonic()
        self.sending_since: float | None = None
        self._handlers: set[asyncio.Task] = set()

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def expired(self, now: float, idle_s: float) -> str | None:
        if self.sending_since is not None and now - self.sending_since > idle_s:
            return "the client has not read its responses for connections.max.idle.ms"
        if self.in_flight == 0 and now - self.last_active > idle_s:
            return "idle (or stalled mid-request) for connections.max.idle.ms"
        return None

    def abort(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        reader = asyncio.create_task(self._read_loop())
        writer = asyncio.create_task(self._write_loop())
        try:
            done, _ = await asyncio.wait({reader, writer},
                                         return_when=asyncio.FIRST_COMPLETED)
            if reader in done and writer not in done:
                await self.queue.put(_END)          # flush the responses already queued
                await writer
        except asyncio.CancelledError:
            pass
        finally:
            for task in (reader, writer, *self._handlers):
                task.cancel()
            await asyncio.gather(reader, writer, *self._handlers, return_exceptions=True)
            self._close_socket()
            self.server.connections.discard(self)

    def _close_socket(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        frames = framing.FrameReader(loop, self.sock, self.server.config.request_max_bytes,
                                     self.touch)
        try:
            while True:
                frame = await frames.read_frame()
                if frame is None:
                    return
                task = self._dispatch(frame)
                if task is None:
                    return
                self.in_flight += 1
                await self.queue.put(task)
        except (framing.FrameError, framing.MalformedRequest) as exc:
            logger.warning("closing connection from %s: %s", self.peer_text, exc)
        except (ConnectionError, OSError) as exc:
            logger.debug("connection from %s: %s", self.peer_text, exc)
        except Exception:  # noqa: BLE001 - this connection ends; the server goes on
            logger.exception("closing connection from %s after an internal error",
                             self.peer_text)

    def _dispatch(self, frame) -> asyncio.Task | None:
        """Parse one frame and start its handler; None when the connection must close."""
        try:
            request = framing.parse_request(frame)
        except framing.MalformedRequest as exc:
            if (exc.api_key == ApiKey.API_VERSIONS and exc.correlation_id is not None
                    and REGISTRY.lookup(exc.api_key, exc.api_version) is None):
                return self._ready(_unsupported_api_versions(exc.correlation_id))
            raise
        spec = REGISTRY.lookup(request.api_key, request.api_version)
        if spec is None:
            if request.api_key == ApiKey.API_VERSIONS:
                return self._ready(_unsupported_api_versions(request.correlation_id))
            raise framing.MalformedRequest(
                f"api key {request.api_key} v{request.api_version} is not supported")
        task = asyncio.create_task(self._handle(spec, request))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        return task

    @staticmethod
    def _ready(result) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.set_result(result)
        return future

    async def _handle(self, spec, request):
        """Run the handler; returns the response chunks, None (no response) or CloseConnection."""
        ctx = RequestContext(self.server, self.order, request, self.client_host)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s v%d #%d from %s (%s)", spec.name, request.api_version,
                         request.correlation_id, self.peer_text, request.client_id)
        await ctx.acquire_order()
        try:
            response = await spec.handler(ctx, request.body)
        except CloseConnection as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a handler bug must not take the server down
            response = _error_response(spec, ctx, request, exc)
        finally:
            ctx.release_order()
        if response is NO_RESPONSE:
            return None
        try:
            return framing.encode_response(request.api_key, request.correlation_id, response)
        except Exception as exc:  # noqa: BLE001 - a handler built an unencodable response
            fallback = _error_response(spec, ctx, request, exc)
            try:
                return framing.encode_response(request.api_key, request.correlation_id,
                                               fallback)
            except Exception:  # noqa: BLE001
                return CloseConnection(f"{spec.name} v{request.api_version}: no response "
                                       "could be encoded")

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            result = await item
            self.in_flight -= 1
            if isinstance(result, CloseConnection):
                logger.info("closing connection from %s: %s", self.peer_text, result)
                return
            if result is None:
                continue
            self.sending_since = time.monotonic()
            try:
                await framing.send_chunks(loop, self.sock, result, self.touch)
            except (ConnectionError, OSError) as exc:
                logger.debug("connection from %s: %s", self.peer_text, exc)
                return
            finally:
                self.sending_since = None


def _error_response(spec, ctx: RequestContext, request, exc: Exception):
    code = getattr(exc, "code", None)
    if isinstance(exc, LogstoreError) and isinstance(code, int):
        logger.info("%s v%d from %s failed: %s", spec.name, request.api_version,
                    ctx.client_host, exc)
    else:
        code = schemas.UNKNOWN_SERVER_ERROR
        logger.exception("%s v%d from %s failed", spec.name, request.api_version,
                         ctx.client_host)
    if spec.error is not None:
        return spec.error(ctx, request.body, code)
    return schemas.blank(schemas.response_class(request.api_key, request.api_version), code)


def _unsupported_api_versions(correlation_id: int) -> list:
    response = handlers.admin.api_versions_response(0, handlers.admin.UNSUPPORTED_VERSION)
    return framing.encode_response(ApiKey.API_VERSIONS, correlation_id, response)
