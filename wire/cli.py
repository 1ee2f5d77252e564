"""`logstore serve`: run the Kafka wire-protocol server over a data directory.

    logstore serve --dir DIR [--host 127.0.0.1] [--port 9092] [--advertised-host HOST]
                   [--advertised-port PORT] [--config KEY=VALUE ...] [--log-level info]

--config takes Kafka names: the server's (socket.request.max.bytes, connections.max.idle.ms,
queued.max.requests, num.io.threads, node.id), the Broker's (auto.create.topics.enable,
num.partitions, transaction.max.timeout.ms, ...) and topic defaults (segment.bytes,
flush.messages, ... or log.-prefixed). Port 0 picks a free port. Once listening, one line goes
to stderr: `logstore serve: listening on HOST:PORT` (scripts and tests wait for it). SIGINT or
SIGTERM stop the server cleanly (exit 0). At the default log level the server logs its own
events (connections closed for a reason, handler failures) and only the engine's warnings. A
bad configuration or a directory locked by another process is a one-line error (exit 1); a
usage error exits 2.

Registered in logstore/cli.py's EXTERNAL_COMMANDS as "wire.cli:main" (logstore never imports
wire at import time).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from logstore.config import parse_key_values
from logstore.errors import LogstoreError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
ENGINE_LOGGERS = ("txn", "logstore")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logstore serve",
        description="Serve the Kafka protocol over a logstore data directory (one node: the "
                    "leader of every partition and the group and transaction coordinator).")
    parser.add_argument("--dir", required=True, help="the data directory (created if needed)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on "
                        f"(default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--advertised-host", default=None,
                        help="host name given to clients in Metadata (default: --host)")
    parser.add_argument("--advertised-port", type=int, default=None,
                        help="port given to clients in Metadata (default: the bound port; set "
                             "it when clients reach the server through a proxy)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="a server, broker or topic-default setting (Kafka names); "
                             "repeatable")
    parser.add_argument("--log-level", default=os.environ.get("LOGSTORE_LOG_LEVEL", "info"),
                        choices=("debug", "info", "warning", "error"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level == "info":             # the engine's per-partition chatter: debug only
        for name in ENGINE_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    from wire.runner import serve

    def ready(server) -> None:
        print(f"logstore serve: listening on {server.host}:{server.port}", file=sys.stderr,
              flush=True)
    try:
        config = parse_key_values(args.config)
        asyncio.run(serve(args.dir, args.host, args.port, config, args.advertised_host,
                          args.advertised_port, on_ready=ready))
    except LogstoreError as exc:
        name = getattr(exc, "name", None) or type(exc).__name__
        print(f"logstore serve: error: {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"logstore serve: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        pass
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
