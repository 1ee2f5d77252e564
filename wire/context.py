"""`RequestContext`: what a handler gets besides the request body.

  - `broker`, `server` (node id, advertised host/port, notifier), the request's api key,
    version, correlation id, client id and the client's host;
  - `run(fn, *args)`: run a Broker call that may block (an append, an fsync, a coordinator
    write, a group future's wait) on the server's worker threads, awaiting its result;
  - `release_order()`: requests of one connection start in arrival order and hold the
    connection's order lock while they run; a handler whose remaining work may overlap with
    the next request (a Produce waiting for its fsync after appending; a Fetch, which only
    reads) releases it early. Responses are written in arrival order regardless;
  - `response(**fields)` / `nested(name, **fields)`: kio entities of this request's response
    version (schemas.build: fields the version lacks are dropped).

Thread-safety: one context per request, used on the loop thread only.
"""

from __future__ import annotations

import asyncio

from wire import schemas


class RequestContext:
    __slots__ = ("server", "broker", "api_key", "api_version", "correlation_id", "client_id",
                 "client_host", "_order", "_ordered")

    def __init__(self, server, order_lock: asyncio.Lock, request, client_host: str):
        self.server = server
        self.broker = server.broker
        self.api_key = request.api_key
        self.api_version = request.api_version
        self.correlation_id = request.correlation_id
        self.client_id = request.client_id or ""
        self.client_host = client_host
        self._order = order_lock
        self._ordered = False

    async def acquire_order(self) -> None:
        await self._order.acquire()
        self._ordered = True

    def release_order(self) -> None:
        if self._ordered:
            self._ordered = False
            self._order.release()

    async def run(self, fn, *args):
        """fn(*args) on a worker thread; the loop stays free meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.server.executor, fn, *args)

    def response(self, **fields):
        return schemas.build(schemas.response_class(self.api_key, self.api_version), **fields)

    def nested(self, struct: str, /, **fields):
        return schemas.build(schemas.nested(self.api_key, self.api_version, struct), **fields)

    def at_least(self, version: int) -> bool:
        return self.api_version >= version
