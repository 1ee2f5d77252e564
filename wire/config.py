"""Server settings, with Kafka's broker config names, and how they split from the Broker's.

`ServerConfig.from_dict(values)` takes one dict of Kafka names (the `--config KEY=VALUE`
options of `logstore serve`): the server's own socket settings are kept here; everything else
goes to `txn.Broker` (which validates its names and topic defaults and rejects unknown ones).

Server settings (Kafka's defaults):
  socket.request.max.bytes   104857600  largest request frame accepted (checked from the size
                                        prefix, before the body is read)
  connections.max.idle.ms    600000     a connection with no request in progress and no byte
                                        read or written for this long is closed; so is one
                                        stalled mid-request or not reading its responses
  queued.max.requests        16         requests read ahead on one connection before its
                                        responses are written (Kafka: 500 per broker; here a
                                        per-connection bound that stops reading the socket)
  num.io.threads             16         worker threads for broker calls that may block
                                        (appends, fsync, coordinator writes)
  node.id                    0          this node's id in Metadata and FindCoordinator

Thread-safety: immutable after construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from logstore.errors import InvalidConfiguration

DEFAULT_REQUEST_MAX_BYTES = 104857600
DEFAULT_IDLE_MS = 600000
DEFAULT_QUEUED_REQUESTS = 16
DEFAULT_IO_THREADS = 16
DEFAULT_NODE_ID = 0

SERVER_KEYS = {
    "socket.request.max.bytes": ("request_max_bytes", DEFAULT_REQUEST_MAX_BYTES, 64),
    "connections.max.idle.ms": ("idle_ms", DEFAULT_IDLE_MS, 1),
    "queued.max.requests": ("queued_requests", DEFAULT_QUEUED_REQUESTS, 1),
    "num.io.threads": ("io_threads", DEFAULT_IO_THREADS, 1),
    "node.id": ("node_id", DEFAULT_NODE_ID, 0),
}


@dataclass(frozen=True)
class ServerConfig:
    request_max_bytes: int = DEFAULT_REQUEST_MAX_BYTES
    idle_ms: int = DEFAULT_IDLE_MS
    queued_requests: int = DEFAULT_QUEUED_REQUESTS
    io_threads: int = DEFAULT_IO_THREADS
    node_id: int = DEFAULT_NODE_ID

    @classmethod
    def from_dict(cls, values: dict | None) -> tuple[ServerConfig, dict]:
        """(server settings, the remaining Broker settings) from one dict of Kafka names."""
        mine, rest = {}, {}
        for name, value in (values or {}).items():
            if name not in SERVER_KEYS:
                rest[name] = value
                continue
            attr, _default, minimum = SERVER_KEYS[name]
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise InvalidConfiguration(f"{name} must be an integer, got {value!r}") from None
            if number < minimum:
                raise InvalidConfiguration(f"{name} must be >= {minimum}, got {number}")
            mine[attr] = number
        return cls(**mine), rest
