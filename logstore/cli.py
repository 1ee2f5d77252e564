"""The `logstore` command line (console script `logstore = logstore.cli:main`).

    logstore topics create TOPIC [--partitions N] [--config KEY=VALUE ...] [--if-not-exists]
    logstore topics list | describe [TOPIC] [--json]
    logstore produce TOPIC [--partition N] [--key-separator SEP] [--compression CODEC]
    logstore consume TOPIC [--partition N] [--from-beginning | --offset N] [--max N] [--json]
    logstore dump PATH [--records] [--json]
    logstore verify [--json]
    logstore recover [--full] [--json]

Every command that touches a store takes `--dir DIR` (default: $LOGSTORE_DIR, else ./data).
Only `topics create` creates a data directory; the others want an existing one (a directory
with topics.json or meta.properties; `verify` and `recover` also take a partition directory),
so a mistyped --dir is an error instead of a new empty store. `dump` reads files directly,
without the store lock, so it works on a directory another process has open.

Structure: each command is one `register_<name>(subparsers)` function in COMMANDS that adds its
parser and sets `func`. Commands implemented outside this package are listed in
EXTERNAL_COMMANDS as "module:function" and registered only when the module can be found
(installed, or a file of the source checkout: bench/ is not an installed package); they are
imported when run and receive the rest of the command line: `main(argv) -> int | None`.

Output: data on stdout; summaries, progress and errors on stderr. Progress is one
self-overwriting line, shown only when stderr is a terminal (and, for `dump`, only when stdout
is not the terminal too). Exit status: 0 success, 1 an operational error or (verify) problems
found, 2 a usage error, 130 interrupted. An error is one line, `logstore: error: <message>`,
starting with the Kafka error name for storage errors (UNKNOWN_TOPIC_OR_PARTITION: ...); never
a traceback (set LOGSTORE_DEBUG=1 to get one for an unexpected internal error).

Bytes in JSON output (consume --json, dump --json): valid UTF-8 becomes a string, anything else
an object {"base64": "..."} (never ambiguous with a string), null stays null.

Choices worth knowing:
  - produce: a line is a record (only "\\n" is stripped, so "\\r" stays); with --key-separator
    a line without the separator is an error, after every line before it is written; batches
    that turn out too large for the topic (max.message.bytes, segment.bytes) are split in
    halves, as Kafka's producer splits them; the codec defaults to the topic's
    compression.type when that names one. Keyless batches start at a random partition and
    rotate (Kafka's sticky partitioner also starts at random).
  - consume: starts at the log start offset (kafka-console-consumer starts at the end), is
    read_uncommitted (this layer has no last stable offset: records of aborted transactions
    are printed; markers are not) and stops at the high watermark.
  - dump exits 0 even when it reports corruption: it describes; `verify` judges.
  - recover --full removes the clean-shutdown marker and the recovery-point checkpoint (under
    the directory lock) so that every segment is CRC-scanned: the repair for damage found by
    `verify` in a store that was closed cleanly.

Thread-safety: `main` runs one command in the calling thread and opens the store only for the
duration of that command; it attaches a stderr handler to the "logstore" logger meanwhile and
restores the logger afterwards, so do not run two `main` calls concurrently in one process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import itertools
import json
import logging
import os
import random
import shutil
import sys
import time
from typing import Iterable, Iterator

from logstore import __version__, checkpoint, compression, fsutil
from logstore import check as checker
from logstore import dump as dumping
from logstore.config import LogConfig, parse_key_values
from logstore.errors import (LogstoreError, OffsetOutOfRange, RecordBatchTooLarge,
                             RecordTooLarge)
from logstore.lock import DirectoryLock
from logstore.log import CLEAN_SHUTDOWN_FILE, Log
from logstore.partitioner import partition_for_key
from logstore.record_batch import HEADER_SIZE as BATCH_OVERHEAD
from logstore.store import META_FILE, TOPICS_FILE, LogStore, TopicInfo, validate_topic_name

PROG = "logstore"
DIR_ENV = "LOGSTORE_DIR"
DIR_DEFAULT = "./data"
DEBUG_ENV = "LOGSTORE_DEBUG"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
PRODUCE_BATCH_RECORDS_MAX = 1000          # stdin lines per batch
PRODUCE_BATCH_BYTES_MAX = 1 << 20         # estimated batch bytes (also capped by the topic)
# Upper bound of a record's framing around its key and value: length varint (5), attributes
# (1), timestamp delta (10), offset delta (5), key and value length varints (5 + 5), header
# count (1).
RECORD_OVERHEAD_MAX = 32
PROGRESS_INTERVAL_S = 0.2
PROGRESS_WIDTH_MIN = 40
EXTERNAL_COMMANDS = (
    ("demo", "txn.demo:main", "run the demo"),
    ("bench", "bench.run:main", "run the benchmarks"),
    ("serve", "wire.cli:main", "serve the Kafka wire protocol over a data directory"),
)
# The directory that holds the logstore package. In a source checkout (the editable install of
# `make venv`) bench/ lives here, next to logstore/, without being an installed package; an
# external command found only here is run with this directory appended to sys.path.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UsageError(Exception):
    """A bad command line (exit 2)."""


class CliError(Exception):
    """An operational error that is not a LogstoreError (exit 1)."""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised as one-line UsageErrors instead of printed."""

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------------------------------------------
# Entry point


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script passes it to sys.exit)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    with _log_to_stderr():
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        return _run(argv)
    except SystemExit as exc:                # --help, --version, or an external command
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None
                                                           else EXIT_ERROR)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except LogstoreError as exc:
        return _fail(f"{exc.name}: {exc}", EXIT_ERROR)
    except (CliError, dumping.DumpError) as exc:
        return _fail(str(exc), EXIT_ERROR)
    except BrokenPipeError:                  # `logstore consume t | head`: the reader left
        _silence_stdout()
        return EXIT_ERROR
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} "
                     f"(set {DEBUG_ENV}=1 for the traceback)", EXIT_ERROR)


def _run(argv: list[str]) -> int:
    externals = available_external_commands()
    parser = build_parser(externals)
    args, extra = parser.parse_known_args(argv)
    _set_log_level(args)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "absent", None):
        module = args.absent.partition(":")[0]
        raise UsageError(f"'{args.command}' is not available here: {module} is neither "
                         f"installed nor a file of a source checkout next to the logstore "
                         f"package ({SOURCE_ROOT}); run it from a clone of the repository")
    target = getattr(args, "external", None)
    if target is not None:
        return run_external(target, extra)
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)} "
                         f"(see '{args.prog} --help')")
    return args.func(args) or EXIT_OK


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@contextlib.contextmanager
def _log_to_stderr() -> Iterator[None]:
    """Storage-layer warnings (e.g. recovery cutting a torn tail) go to stderr, one line each,
    for the duration of the command; the logger's previous state is restored afterwards (main
    may run in-process, inside an application or a test)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    logger = logging.getLogger("logstore")
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved[0]
        logger.setLevel(saved[1])


def _set_log_level(args: argparse.Namespace) -> None:
    logging.getLogger("logstore").setLevel(logging.INFO if args.verbose else logging.WARNING)


def build_parser(externals: Iterable[tuple[str, str, str]] = ()) -> Parser:
    parser = Parser(prog=PROG, description="An embeddable, Kafka-compatible log store.",
                    epilog=f"Data directory: --dir DIR, default ${DIR_ENV}, else {DIR_DEFAULT}. "
                           f"'{PROG} COMMAND --help' describes a command.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print the storage layer's informational messages")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    for name, target, help_text in externals:
        sub.add_parser(name, help=help_text, add_help=False).set_defaults(external=target)
    found = {name for name, _, _ in externals}
    for name, target, _ in EXTERNAL_COMMANDS:    # absent: a clear error, not "invalid choice"
        if name not in found:
            sub.add_parser(name, add_help=False).set_defaults(absent=target)
    return parser


def available_external_commands() -> list[tuple[str, str, str]]:
    """The EXTERNAL_COMMANDS whose module exists (found without importing it)."""
    return [(name, target, help_text) for name, target, help_text in EXTERNAL_COMMANDS
            if _importable(target.partition(":")[0]) or _in_source_root(target)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):          # a parent package is missing
        return False


def _in_source_root(target: str) -> bool:
    """The module is a file of the source checkout next to logstore/ (e.g. bench/run.py)."""
    base = os.path.join(SOURCE_ROOT, *target.partition(":")[0].split("."))
    return os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py"))


def run_external(target: str, argv: list[str]) -> int:
    module_name, _, function_name = target.partition(":")
    if not _importable(module_name) and SOURCE_ROOT not in sys.path:
        sys.path.append(SOURCE_ROOT)           # after everything installed: never shadows it
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(argv)
    return result if isinstance(result, int) else EXIT_OK


# ------------------------------------------------------------------------------------------------
# Shared options and helpers


def add_dir_option(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get(DIR_ENV) or DIR_DEFAULT
    parser.add_argument("--dir", default=default, metavar="DIR",
                        help=f"data directory (default: ${DIR_ENV}, else {DIR_DEFAULT}; "
                             f"here {default})")


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


non_negative_int = _int_at_least(0)
positive_int = _int_at_least(1)


def store_dir_kind(path: str, allow_partition: bool = False) -> str:
    """'store' or 'partition' (only when allowed); CliError for anything else."""
    if not os.path.isdir(path):
        raise CliError(f"no data directory at {path} (pass --dir DIR or set ${DIR_ENV}; "
                       "'logstore topics create' makes a new one)")
    if os.path.exists(os.path.join(path, TOPICS_FILE)) or \
            os.path.exists(os.path.join(path, META_FILE)):
        return "store"
    if allow_partition and checker.is_partition_dir(path):
        return "partition"
    wanted = "a logstore data or partition directory" if allow_partition else \
        "a logstore data directory"
    raise CliError(f"{path} is not {wanted} (it has no {TOPICS_FILE} or {META_FILE})")


@contextlib.contextmanager
def open_store(path: str, create: bool = False) -> Iterator[LogStore]:
    """The store at path, closed cleanly (flush, checkpoints, clean-shutdown marker) after."""
    if not create:
        store_dir_kind(path)
    store = LogStore(path, background=False)
    try:
        yield store
    finally:
        store.close()


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")


def emit_json(value) -> None:
    emit(json.dumps(value, ensure_ascii=False))


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class Progress:
    """One self-overwriting status line on stderr, written only when stderr is a terminal and
    at most every PROGRESS_INTERVAL_S; `clear()` erases it before real output follows."""

    def __init__(self, label: str, enabled: bool | None = None, unit=human_bytes):
        self.label = label
        self.unit = unit
        self.stream = sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self._shown_at = 0.0
        self._visible = False

    def update(self, done: int, total: int, detail: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._visible and now - self._shown_at < PROGRESS_INTERVAL_S:
            return
        self._shown_at = now
        percent = f"{100 * done // total}% " if total else ""
        line = f"{self.label}: {percent}{self.unit(done)} of {self.unit(total)} {detail}"
        width = max(PROGRESS_WIDTH_MIN, shutil.get_terminal_size().columns - 1)
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()
        self._visible = True

    def clear(self) -> None:
        if self._visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._visible = False


def log_bytes_under(path: str) -> int:
    """Total size of the .log files below path (the denominator of verify's progress)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            if name.endswith(".log"):
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(dirpath, name))
    return total


# ------------------------------------------------------------------------------------------------
# topics


def register_topics(sub) -> None:
    topics = sub.add_parser("topics", help="create, list and describe topics",
                            description="Create, list and describe topics.")
    actions = topics.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a topic",
                                description="Create a topic (and the data directory if needed).")
    create.add_argument("topic")
    create.add_argument("--partitions", type=positive_int, default=1, metavar="N",
                        help="number of partitions (default 1)")
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="a topic config override, Kafka's names (segment.bytes, "
                             "retention.ms, ...); repeat for more")
    create.add_argument("--if-not-exists", action="store_true",
                        help="succeed when the topic already exists")
    add_dir_option(create)
    create.set_defaults(func=cmd_topics_create, prog=create.prog)
    listing = actions.add_parser("list", help="list topic names, one per line",
                                 description="List topic names, one per line.")
    add_json_option(listing, "a JSON array")
    add_dir_option(listing)
    listing.set_defaults(func=cmd_topics_list, prog=listing.prog)
    describe = actions.add_parser(
        "describe", help="show partitions, config overrides, offsets and sizes",
        description="Per topic: id, partition count, config overrides; per partition: log "
                    "start and end offsets, segment count and size in bytes. Opening a "
                    "partition recovers it if the store was not shut down cleanly.")
    describe.add_argument("topic", nargs="?", help="one topic (default: all)")
    add_json_option(describe, "a JSON array of topics")
    add_dir_option(describe)
    describe.set_defaults(func=cmd_topics_describe, prog=describe.prog)


def cmd_topics_create(args: argparse.Namespace) -> int:
    validate_topic_name(args.topic)
    config = parse_key_values(args.config)
    LogConfig.from_dict(config)                      # bad configs fail before anything is made
    with open_store(args.dir, create=True) as store:
        existed = store.has_topic(args.topic)
        store.create_topic(args.topic, args.partitions, config,
                           if_not_exists=args.if_not_exists)
    emit(f"Topic {args.topic} already exists." if existed else f"Created topic {args.topic}.")
    return EXIT_OK


def cmd_topics_list(args: argparse.Namespace) -> int:
    with open_store(args.dir) as store:
        names = sorted(store.topics())
    if args.json:
        emit_json(names)
    else:
        for name in names:
            emit(name)
    return EXIT_OK


def describe_topic(store: LogStore, info: TopicInfo) -> dict:
    partitions = []
    for partition in range(info.partitions):
        log = store.log(info.name, partition)
        partitions.append({"partition": partition, "log_start_offset": log.log_start_offset,
                           "log_end_offset": log.log_end_offset,
                           "segments": len(log.segments), "size_bytes": log.size_in_bytes})
    return {"topic": info.name, "topic_id": info.topic_id, "partition_count": info.partitions,
            "config": {k: str(v) for k, v in sorted(info.overrides.items())},
            "partitions": partitions}


def cmd_topics_describe(args: argparse.Namespace) -> int:
    with open_store(args.dir) as store:
        names = [args.topic] if args.topic else sorted(store.topics())
        topics = [describe_topic(store, store.topic(name)) for name in names]
    if args.json:
        emit_json(topics)
        return EXIT_OK
    for topic in topics:
        configs = ",".join(f"{k}={v}" for k, v in topic["config"].items())
        emit(f"Topic: {topic['topic']}\tTopicId: {topic['topic_id']}\t"
             f"PartitionCount: {topic['partition_count']}\tConfigs: {configs}")
        for p in topic["partitions"]:
            emit(f"\tPartition: {p['partition']}\tLogStartOffset: {p['log_start_offset']}\t"
                 f"LogEndOffset: {p['log_end_offset']}\tSegments: {p['segments']}\t"
                 f"Size: {p['size_bytes']}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# produce


def register_produce(sub) -> None:
    produce = sub.add_parser(
        "produce", help="append stdin lines to a topic, one record per line",
        description="Append stdin to a topic, one record per line (bytes; only the trailing "
                    "newline is removed). Lines are appended in batches of up to "
                    f"{PRODUCE_BATCH_RECORDS_MAX} records or about "
                    f"{PRODUCE_BATCH_BYTES_MAX // 1024} KiB, and fsynced at the end: when "
                    "the command returns, the data is durable. Without --partition, keyed "
                    "records go where Kafka's default partitioner would put them (murmur2 of "
                    "the key) and keyless batches rotate over the partitions.")
    produce.add_argument("topic")
    produce.add_argument("--partition", type=non_negative_int, metavar="N",
                         help="append everything to partition N")
    produce.add_argument("--key-separator", metavar="SEP",
                         help="split each line at the first SEP into key and value (a line "
                              "without SEP is an error; the lines before it are written)")
    produce.add_argument("--compression", choices=tuple(compression.CODECS_BY_NAME),
                         help="batch compression (default: the topic's compression.type "
                              "when it names a codec, else none)")
    add_dir_option(produce)
    produce.set_defaults(func=cmd_produce, prog=produce.prog)


def read_line_batches(stream, separator: bytes | None, bytes_max: int,
                      records_max: int = PRODUCE_BATCH_RECORDS_MAX
                      ) -> Iterator[list[tuple[bytes | None, bytes]]]:
    """(key, value) lists of at most records_max lines and about bytes_max batch bytes."""
    batch: list[tuple[bytes | None, bytes]] = []
    size = BATCH_OVERHEAD
    for number, line in enumerate(stream, 1):
        if line.endswith(b"\n"):
            line = line[:-1]
        key = None
        if separator is not None:
            key, found, line = line.partition(separator)
            if not found:
                if batch:
                    yield batch          # every line before the bad one is written
                raise CliError(f"line {number} has no key separator "
                               f"{os.fsdecode(separator)!r}; the {number - 1} lines before it "
                               "were written")
        cost = len(line) + len(key or b"") + RECORD_OVERHEAD_MAX
        if batch and (len(batch) >= records_max or size + cost > bytes_max):
            yield batch
            batch, size = [], BATCH_OVERHEAD
        batch.append((key, line))
        size += cost
    if batch:
        yield batch


def produce_codec(name: str | None, config: LogConfig) -> int:
    if name is not None:
        return compression.codec_from_name(name)
    return compression.CODECS_BY_NAME.get(config.compression_type, compression.NONE)


class LineProducer:
    """Routes batches of (key, value) to partitions and appends them; remembers the offsets."""

    def __init__(self, store: LogStore, info: TopicInfo, codec: int, partition: int | None):
        self.store = store
        self.topic = info.name
        self.partition_count = info.partitions
        self.fixed_partition = partition
        self.codec = codec
        self.next_partition = random.randrange(info.partitions)   # as Kafka's sticky start
        self.batch_bytes_max = min(PRODUCE_BATCH_BYTES_MAX, info.config.max_message_bytes,
                                   info.config.segment_bytes)
        self.written: dict[int, list[int]] = {}     # partition -> [first, last, count]

    def send(self, records: list[tuple[bytes | None, bytes]]) -> None:
        for partition, group in self._route(records).items():
            keys = None if group[0][0] is None else [k for k, _ in group]
            self._append(partition, [v for _, v in group], keys)

    def _route(self, records) -> dict[int, list]:
        if self.fixed_partition is not None:
            return {self.fixed_partition: records}
        if records[0][0] is None:
            partition = self.next_partition
            self.next_partition = (partition + 1) % self.partition_count
            return {partition: records}
        groups: dict[int, list] = {}
        for record in records:
            partition = partition_for_key(record[0], self.partition_count)
            groups.setdefault(partition, []).append(record)
        return groups

    def _append(self, partition: int, values: list[bytes], keys: list[bytes] | None) -> None:
        """One batch, split in halves while it is too large for the topic (compression can
        make the estimate wrong); a single record that is too large is an error."""
        log = self.store.log(self.topic, partition)
        try:
            info = log.append(values, keys, compression=self.codec)
        except (RecordTooLarge, RecordBatchTooLarge):
            if len(values) == 1:
                raise
            half = len(values) // 2
            self._append(partition, values[:half], keys and keys[:half])
            self._append(partition, values[half:], keys and keys[half:])
            return
        seen = self.written.setdefault(partition, [info.first_offset, info.last_offset, 0])
        seen[1] = info.last_offset
        seen[2] += info.records_count

    def flush(self) -> None:
        for partition in self.written:
            self.store.log(self.topic, partition).flush()

    def summary(self) -> str:
        total = sum(count for _, _, count in self.written.values())
        parts = []
        for partition, (first, last, _) in sorted(self.written.items()):
            offsets = f"offset {first}" if first == last else f"offsets {first}-{last}"
            parts.append(f"partition {partition}: {offsets}")
        where = f" ({'; '.join(parts)})" if parts else ""
        return f"produced {total} records to topic '{self.topic}'{where}"


def cmd_produce(args: argparse.Namespace) -> int:
    separator = None
    if args.key_separator is not None:
        if not args.key_separator:
            raise UsageError("--key-separator must not be empty")
        separator = os.fsencode(args.key_separator)
    with open_store(args.dir) as store:
        info = store.topic(args.topic)
        if args.partition is not None:
            store.log(args.topic, args.partition)          # an unknown partition fails here
        producer = LineProducer(store, info, produce_codec(args.compression, info.config),
                                args.partition)
        try:
            for batch in read_line_batches(sys.stdin.buffer, separator,
                                           producer.batch_bytes_max):
                producer.send(batch)
        finally:
            producer.flush()
            print(producer.summary(), file=sys.stderr)
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# consume


def register_consume(sub) -> None:
    consume = sub.add_parser(
        "consume", help="print a topic's records",
        description="Print records, one per line: the value, or key TAB value when the "
                    "record has a key (null for a null value). Starts at the beginning of "
                    "each partition by default (unlike kafka-console-consumer, whose default "
                    "is the end: an embedded store's CLI is for looking at what is there), "
                    "reads partitions in order, and stops at the high watermark; it does not "
                    "wait for new records. Transaction markers are skipped; records of "
                    "aborted transactions are shown (read_uncommitted).")
    consume.add_argument("topic")
    consume.add_argument("--partition", type=non_negative_int, metavar="N",
                         help="only partition N (default: all, in order)")
    start = consume.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true",
                       help="start at each partition's log start offset (the default)")
    start.add_argument("--offset", type=non_negative_int, metavar="N",
                       help="start at offset N (in each partition read); below the log "
                            "start offset is an OFFSET_OUT_OF_RANGE error")
    consume.add_argument("--max", type=non_negative_int, metavar="N",
                         help="stop after N records")
    consume.add_argument("--json", action="store_true",
                         help="one JSON object per record: topic, partition, offset, "
                              "timestamp, timestamp_type, key, value, headers (bytes: UTF-8 "
                              "text as a string, else {\"base64\": ...})")
    add_dir_option(consume)
    consume.set_defaults(func=cmd_consume, prog=consume.prog)


def iter_records(log: Log, offset: int | None) -> Iterator[tuple]:
    """(log, batch, record) for every data record from offset (default: log start) up to
    the high watermark; control batches skipped."""
    start = log.log_start_offset if offset is None else offset
    if start < log.log_start_offset:
        raise OffsetOutOfRange(f"{log.name}: offset {start} is below the log start offset "
                               f"{log.log_start_offset}")
    high_watermark = log.high_watermark
    if start >= high_watermark:
        return
    for batch in log.batches(start, high_watermark):
        if batch.is_control:
            continue
        for record in batch.records():
            if record.offset >= start:
                yield log, batch, record


def record_json(log: Log, batch, record) -> dict:
    return {"topic": log.topic, "partition": log.partition, "offset": record.offset,
            "timestamp": record.timestamp,
            "timestamp_type": dumping.TIMESTAMP_TYPE_NAMES[batch.timestamp_type],
            "key": dumping.bytes_to_json(record.key),
            "value": dumping.bytes_to_json(record.value),
            "headers": [{"key": k, "value": dumping.bytes_to_json(v)}
                        for k, v in record.headers]}


def record_line(record) -> bytes:
    value = b"null" if record.value is None else record.value
    if record.key is None:
        return value + b"\n"
    return record.key + b"\t" + value + b"\n"


def cmd_consume(args: argparse.Namespace) -> int:
    count = 0
    out = sys.stdout.buffer
    with open_store(args.dir) as store:
        info = store.topic(args.topic)
        numbers = [args.partition] if args.partition is not None else range(info.partitions)
        logs = [store.log(args.topic, n) for n in numbers]
        records = itertools.chain.from_iterable(iter_records(log, args.offset)
                                                for log in logs)
        if args.max is not None:
            records = itertools.islice(records, args.max)
        for log, batch, record in records:
            if args.json:
                out.write(json.dumps(record_json(log, batch, record),
                                     ensure_ascii=False).encode() + b"\n")
            else:
                out.write(record_line(record))
            count += 1
        out.flush()
    print(f"consumed {count} records from topic '{args.topic}'", file=sys.stderr)
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# dump


def register_dump(sub) -> None:
    dump = sub.add_parser(
        "dump", help="print the batches of a .log file or a partition directory",
        description="Like kafka-dump-log.sh: per batch its offsets, position, size, "
                    "timestamp type and max timestamp, producer id/epoch/sequence, leader "
                    "epoch, transactional and control flags, codec, CRC and whether it is "
                    "valid. PATH is a .log/.index/.timeindex/.txnindex/.snapshot file, a "
                    "partition directory (every segment, then its index files summarised) or "
                    "a data directory (every partition). A corrupt or partial tail is "
                    "reported with its byte position; dump still exits 0 (use 'logstore "
                    "verify' for a pass/fail answer). Reads files directly: no lock is taken.")
    dump.add_argument("path", metavar="PATH")
    dump.add_argument("--records", action="store_true",
                      help="also print every record (offset, timestamp, key, value, headers; "
                           "control records: marker type and coordinator epoch)")
    dump.add_argument("--json", action="store_true",
                      help="one JSON object per line (batch, index summary, corrupt tail...)")
    dump.set_defaults(func=cmd_dump, prog=dump.prog)


def cmd_dump(args: argparse.Namespace) -> int:
    progress = Progress("dump", enabled=_isatty(sys.stderr) and not _isatty(sys.stdout))

    def on_progress(done: int, total: int, path: str) -> None:
        progress.update(done, total, os.path.basename(path))

    try:
        for event in dumping.dump(args.path, args.records, on_progress):
            emit(dumping.to_json(event) if args.json else dumping.format_text(event))
    finally:
        progress.clear()
    sys.stdout.flush()
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# verify


def register_verify(sub) -> None:
    verify = sub.add_parser(
        "verify", help="check every CRC, index and txn index of a store",
        description="Run the consistency checker over a data directory (or one partition "
                    "directory): every batch's CRC, size and offsets, decoded records, the "
                    "offset/time/transaction indexes and producer snapshots. Prints each "
                    "problem as 'FILE @ byte N: message' and exits 1, or prints one OK line "
                    "and exits 0. Reads files without taking the store lock.")
    add_json_option(verify, "the result")
    add_dir_option(verify)
    verify.set_defaults(func=cmd_verify, prog=verify.prog)


def _partition_count(path: str, kind: str) -> int:
    if kind == "partition":
        return 1
    try:
        with open(os.path.join(path, TOPICS_FILE), encoding="utf-8") as f:
            return sum(int(entry["partitions"]) for entry in json.load(f).values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0


def cmd_verify(args: argparse.Namespace) -> int:
    kind = store_dir_kind(args.dir, allow_partition=True)
    totals = {"segments": 0, "batches": 0, "bytes": 0}
    all_bytes = log_bytes_under(args.dir)
    progress = Progress("verify")

    def on_segment(log_path: str, size: int, batches: int) -> None:
        totals["segments"] += 1
        totals["batches"] += batches
        totals["bytes"] += size
        progress.update(totals["bytes"], all_bytes, os.path.relpath(log_path, args.dir))

    try:
        problems = checker.check(args.dir, on_segment=on_segment)
    finally:
        progress.clear()
    partitions = _partition_count(args.dir, kind)
    if args.json:
        emit_json({"ok": not problems, "path": args.dir, "partitions": partitions, **totals,
                   "problems": [{"file": p.path, "position": p.position, "message": p.message}
                                for p in problems]})
    else:
        for problem in problems:
            emit(str(problem))
        counts = (f"{partitions} partitions, {totals['segments']} segments, "
                  f"{totals['batches']} batches ({human_bytes(totals['bytes'])})")
        emit(f"FAILED: {len(problems)} problem(s) in {args.dir} ({counts} checked)" if problems
             else f"OK: {args.dir}: {counts} checked, no problems")
    return EXIT_ERROR if problems else EXIT_OK


# ------------------------------------------------------------------------------------------------
# recover


def register_recover(sub) -> None:
    recover = sub.add_parser(
        "recover", help="open every partition, recovering what needs it, and close cleanly",
        description="Open the store (or one partition directory) and every partition in it. "
                    "After an unclean shutdown each partition is recovered from its recovery "
                    "point: batches are CRC-checked, indexes rebuilt, and a torn or corrupt "
                    "tail is cut. Prints what each partition's recovery did, then closes "
                    "cleanly.")
    recover.add_argument("--full", action="store_true",
                         help="recover every segment from offset 0, even after a clean "
                              "shutdown (removes the clean-shutdown marker and the "
                              "recovery-point checkpoint first): the repair for corruption "
                              "that 'verify' found in a cleanly closed store; data from the "
                              "first invalid batch on is cut")
    add_json_option(recover, "the per-partition reports")
    add_dir_option(recover)
    recover.set_defaults(func=cmd_recover, prog=recover.prog)


def force_full_recovery(path: str) -> None:
    """Make the next open recover everything: no clean-shutdown marker, no recovery points.
    Done under the directory lock, so a store another process owns is left alone."""
    lock = DirectoryLock(path)
    lock.acquire()
    try:
        for name in (CLEAN_SHUTDOWN_FILE, checkpoint.RECOVERY_POINT_FILE):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
        fsutil.fsync_dir(path)
    finally:
        lock.release()


def recovery_entry(log: Log) -> dict:
    report = log.recovery_report
    file, position = report.truncated_at or (None, -1)
    return {"partition": log.name, "clean_shutdown": report.clean_shutdown,
            "segments_recovered": report.segments_recovered,
            "truncated_bytes": report.truncated_bytes,
            "truncated_file": file, "truncated_position": position,
            "truncation_reason": report.truncation_reason,
            "segments_removed": report.segments_removed,
            "indexes_rebuilt": report.indexes_rebuilt,
            "leftovers_removed": report.leftovers_removed,
            "log_start_offset": log.log_start_offset, "log_end_offset": log.log_end_offset}


def recovery_text(entry: dict) -> str:
    done = []
    if entry["segments_recovered"]:
        done.append(f"recovered {len(entry['segments_recovered'])} segment(s) from offset "
                    f"{entry['segments_recovered'][0]}")
    if entry["truncated_bytes"]:
        done.append(f"cut {entry['truncated_bytes']} bytes at byte "
                    f"{entry['truncated_position']} of "
                    f"{os.path.basename(entry['truncated_file'])} "
                    f"({entry['truncation_reason'] or 'invalid batch'})")
    if entry["segments_removed"]:
        done.append(f"removed {len(entry['segments_removed'])} later segment(s) "
                    f"{entry['segments_removed']}")
    if entry["indexes_rebuilt"]:
        done.append(f"rebuilt the indexes of segment(s) {entry['indexes_rebuilt']}")
    if entry["leftovers_removed"]:
        done.append(f"removed leftover files {', '.join(entry['leftovers_removed'])}")
    if not done:
        done.append("nothing to recover" + (" (clean shutdown)" if entry["clean_shutdown"]
                                            else ""))
    if entry["segments_recovered"] and not entry["truncated_bytes"]:
        done.append("nothing cut")
    return (f"{entry['partition']}: {'; '.join(done)}; log offsets "
            f"{entry['log_start_offset']}-{entry['log_end_offset']}")


def _recover_store(path: str) -> list[dict]:
    entries = []
    progress = Progress("recover", unit=lambda n: f"{n} partitions")
    with open_store(path) as store:
        names = [(t, p) for t, info in sorted(store.topics().items())
                 for p in range(info.partitions)]
        try:
            for done, (topic, partition) in enumerate(names):
                progress.update(done, len(names), f"{topic}-{partition}")
                entries.append(recovery_entry(store.log(topic, partition)))
        finally:
            progress.clear()
    return entries


def cmd_recover(args: argparse.Namespace) -> int:
    kind = store_dir_kind(args.dir, allow_partition=True)
    if args.full:
        force_full_recovery(args.dir)
    recovery_logger = logging.getLogger("logstore.recovery")
    saved_level = recovery_logger.level
    if not args.verbose:      # the report below says it; the storage layer's warnings repeat it
        recovery_logger.setLevel(logging.ERROR)
    try:
        if kind == "partition":
            with Log.open(args.dir) as log:
                entries = [recovery_entry(log)]
        else:
            entries = _recover_store(args.dir)
    finally:
        recovery_logger.setLevel(saved_level)
    if args.json:
        emit_json(entries)
        return EXIT_OK
    for entry in entries:
        emit(recovery_text(entry))
    needed = sum(1 for e in entries if e["segments_recovered"] or e["indexes_rebuilt"])
    cut = sum(e["truncated_bytes"] for e in entries)
    emit(f"recovered {args.dir}: {len(entries)} partition(s), {needed} needed recovery, "
         f"{cut} bytes cut; closed cleanly")
    return EXIT_OK


COMMANDS = (register_topics, register_produce, register_consume, register_dump,
            register_verify, register_recover)
