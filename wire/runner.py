"""Running a WireServer: in the foreground (`serve`, for the CLI) or on a background thread
(`ServerThread`, for tests and benchmarks that drive real clients in the same process).

Both open the data directory's `txn.Broker` (Broker settings and topic defaults come from the
same config dict as the server's socket settings, split by ServerConfig.from_dict) and close it
after the server: the Broker flushes, writes producer-state snapshots and marks a clean
shutdown.

Thread-safety: ServerThread.start/stop may be called from any one controlling thread; the
server itself lives on the thread's own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from txn.broker import Broker
from wire.config import ServerConfig
from wire.server import WireServer

logger = logging.getLogger("wire.runner")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


def open_broker(path: str, config: dict | None) -> tuple[Broker, ServerConfig]:
    server_config, broker_config = ServerConfig.from_dict(config)
    return Broker(path, broker_config), server_config


async def serve(path: str, host: str, port: int, config: dict | None = None,
                advertised_host: str | None = None, advertised_port: int | None = None,
                on_ready=None) -> None:
    """Serve until SIGINT/SIGTERM (or cancellation); on_ready(server) once listening."""
    broker, server_config = open_broker(path, config)
    try:
        server = WireServer(broker, host, port, server_config, advertised_host,
                            advertised_port)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if on_ready is not None:
            on_ready(server)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await server.close()
    finally:
        broker.close()


class ServerThread:
    """A WireServer over `path` on its own thread and event loop.

        with ServerThread(path, {"connections.max.idle.ms": 5000}) as server:
            Producer({"bootstrap.servers": server.bootstrap, ...})
    """

    def __init__(self, path: str, config: dict | None = None, host: str = "127.0.0.1",
                 port: int = 0, advertised_port: int | None = None):
        self.path = path
        self.config = dict(config or {})
        self.host = host
        self.requested_port = port
        self.advertised_port = advertised_port
        self.broker: Broker | None = None
        self.server: WireServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._run, name="wire-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the wire server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.broker, server_config = open_broker(self.path, self.config)
        try:
            self.server = WireServer(self.broker, self.host, self.requested_port,
                                     server_config, advertised_port=self.advertised_port)
            await self.server.start()
            self._ready.set()
            await self._stopped.wait()
            await self.server.close()
        finally:
            self.broker.close()

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
