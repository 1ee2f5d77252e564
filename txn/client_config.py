"""Configuration of the embedded Producer, Consumer and AdminClient: confluent-kafka's keys.

Keys are librdkafka's names (CONFIGURATION.md) with librdkafka's defaults where they apply;
values may be given as Python values or as the strings librdkafka parses ("true", "5000").
`parse_config(conf, kwargs)` validates a configuration and returns a `ClientConfig`:

  - `log.dirs` (required) selects the embedded store: every client in a process naming the same
    directory shares one engine (`txn.Broker.open`). Without it the client refuses to start and
    says that confluent_kafka is the client for a remote cluster.
  - `SUPPORTED`: the keys the embedded clients implement (types, bounds, choices, aliases).
  - `IGNORED` / `IGNORED_PREFIXES`: keys that only concern the network, security, retries,
    statistics or librdkafka internals. They are accepted, so a configuration written for a
    Kafka cluster runs unchanged, and have no effect. The list is the documentation.
  - `broker.<name>`: a broker-level Kafka setting (`broker.transaction.max.timeout.ms`,
    `broker.num.partitions`, `broker.auto.create.topics.enable`, topic defaults such as
    `broker.segment.bytes`, ...) passed to `Broker.open`. The engine is shared, so these apply
    when the first client opens the directory in the process; later clients join the engine as
    it is (Broker.open ignores a different config).
  - `UNSUPPORTED`: librdkafka keys or values whose behaviour the embedded clients do not offer
    (KIP-848 `group.protocol=consumer`, the cooperative-sticky assignor): a precise error.
  - anything else raises KafkaException(_INVALID_ARG) naming the key ("No such configuration
    property"), as librdkafka does for an unknown key.

Keyword arguments follow confluent-kafka: they override the dict, and underscores stand for
dots (`Producer({...}, linger_ms=10)`), except for the callback names (`on_delivery`,
`error_cb`, ...) and `logger`, which are taken as they are.

Thread-safety: parsing is pure; a ClientConfig is read-only after construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from txn.kafka_error import KafkaError, kafka_exception

LOG_DIRS = "log.dirs"
BROKER_PREFIX = "broker."

INT32_MAX = 2147483647
ACKS_ALL = -1
ENABLE_IDEMPOTENCE = "enable.idempotence"

# librdkafka enum spellings -> the value the clients use.
ACKS_VALUES = {"all": ACKS_ALL, "-1": ACKS_ALL, "0": 0, "1": 1, -1: ACKS_ALL, 0: 0, 1: 1}
OFFSET_RESET_VALUES = {"smallest": "earliest", "earliest": "earliest", "beginning": "earliest",
                       "largest": "latest", "latest": "latest", "end": "latest",
                       "error": "error"}
ISOLATION_VALUES = {"read_committed": "read_committed",
                    "read_uncommitted": "read_uncommitted"}
COMPRESSION_VALUES = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4,
                      "uncompressed": 0}
PARTITIONERS = ("consistent_random", "consistent", "murmur2_random", "murmur2", "random",
                "fnv1a", "fnv1a_random")
ASSIGNORS = ("range", "roundrobin")
CALLBACK_KEYS = ("on_delivery", "error_cb", "on_commit", "throttle_cb", "stats_cb",
                 "oauth_cb", "logger")
# confluent-kafka handles these in one client class only; the others reject them as unknown.
CLIENT_ONLY = {"on_delivery": "Producer", "on_commit": "Consumer"}


@dataclass(frozen=True)
class Key:
    """One supported key: its kind ("int", "bool", "str", "enum", "callable", "object",
    "list"), librdkafka's default, bounds or choices."""

    name: str
    kind: str
    default: object = None
    minimum: int | None = None
    maximum: int | None = None
    choices: dict | tuple | None = None


SUPPORTED: dict[str, Key] = {k.name: k for k in (
    # every client
    Key(LOG_DIRS, "str"),
    Key("client.id", "str", "rdkafka"),
    Key("error_cb", "callable"),
    Key("throttle_cb", "callable"),
    Key("stats_cb", "callable"),
    Key("logger", "object"),
    Key("message.max.bytes", "int", 1000000, 1000, 1000000000),
    Key("receive.message.max.bytes", "int", 100000000, 1000, INT32_MAX),
    # producer
    Key("on_delivery", "callable"),
    Key("acks", "enum", ACKS_ALL, choices=ACKS_VALUES),
    Key(ENABLE_IDEMPOTENCE, "bool", False),
    Key("transactional.id", "str"),
    Key("transaction.timeout.ms", "int", 60000, 1000, INT32_MAX),
    Key("linger.ms", "int", 5, 0, 900000),
    Key("batch.num.messages", "int", 10000, 1, 1000000),
    Key("batch.size", "int", 1000000, 1, INT32_MAX),
    Key("queue.buffering.max.messages", "int", 100000, 0, INT32_MAX),
    Key("queue.buffering.max.kbytes", "int", 1048576, 1, INT32_MAX),
    Key("compression.type", "enum", 0, choices=COMPRESSION_VALUES),
    Key("compression.level", "int", -1, -1, 12),
    Key("partitioner", "enum", "consistent_random",
        choices={name: name for name in PARTITIONERS}),
    Key("sticky.partitioning.linger.ms", "int", 10, 0, 900000),
    Key("delivery.report.only.error", "bool", False),
    # consumer
    Key("group.id", "str"),
    Key("group.instance.id", "str"),
    Key("on_commit", "callable"),
    Key("isolation.level", "enum", "read_committed", choices=ISOLATION_VALUES),
    Key("auto.offset.reset", "enum", "latest", choices=OFFSET_RESET_VALUES),
    Key("enable.auto.commit", "bool", True),
    Key("auto.commit.interval.ms", "int", 5000, 0, 86400000),
    Key("enable.auto.offset.store", "bool", True),
    Key("enable.partition.eof", "bool", False),
    Key("session.timeout.ms", "int", 45000, 1, 3600000),
    Key("heartbeat.interval.ms", "int", 3000, 1, 3600000),
    Key("max.poll.interval.ms", "int", 300000, 1, 86400000),
    Key("fetch.wait.max.ms", "int", 500, 0, 300000),
    Key("max.partition.fetch.bytes", "int", 1048576, 1, 1000000000),
    Key("fetch.max.bytes", "int", 52428800, 0, 2147483135),
    Key("partition.assignment.strategy", "list", ("range", "roundrobin")),
    Key("check.crcs", "bool", False),
    Key("allow.auto.create.topics", "bool", False),
    Key("group.protocol", "enum", "classic", choices={"classic": "classic"}),
)}

# librdkafka's alternative names (CONFIGURATION.md "Alias for").
ALIASES = {
    "queue.buffering.max.ms": "linger.ms",
    "request.required.acks": "acks",
    "compression.codec": "compression.type",
    "fetch.message.max.bytes": "max.partition.fetch.bytes",
    "dr_cb": "on_delivery",
    "dr_msg_cb": "on_delivery",
    "auto.commit.enable": "enable.auto.commit",
}

# Accepted and without effect on an embedded store (network, security, retries, statistics,
# librdkafka internals). Sorted; the prefixes below cover whole families.
IGNORED = frozenset((
    "api.version.fallback.ms", "api.version.request",
    "api.version.request.timeout.ms", "bootstrap.servers", "broker.address.family",
    "broker.address.ttl", "broker.version.fallback", "builtin.features", "client.dns.lookup",
    "client.rack", "client.software.name", "client.software.version",
    "connections.max.idle.ms", "coordinator.query.interval.ms", "debug",
    "delivery.timeout.ms", "enable.gapless.guarantee", "enable.metrics.push",
    "enable.random.seed", "enable.sasl.oauthbearer.unsecure.jwt",
    "enable.ssl.certificate.verification", "fetch.error.backoff.ms", "fetch.min.bytes",
    "fetch.queue.backoff.ms", "group.remote.assignor", "internal.termination.signal",
    "log.connection.close", "log.queue", "log.thread.name", "log_cb", "log_level",
    "max.in.flight", "max.in.flight.requests.per.connection", "message.copy.max.bytes",
    "message.send.max.retries", "message.timeout.ms", "metadata.broker.list",
    "metadata.max.age.ms", "metadata.recovery.rebootstrap.trigger.ms",
    "metadata.recovery.strategy",
    "oauthbearer_token_refresh_cb", "open_cb", "opaque",
    "queue.buffering.backpressure.threshold", "queued.max.messages.kbytes",
    "queued.min.messages", "reconnect.backoff.jitter.ms", "reconnect.backoff.max.ms",
    "reconnect.backoff.ms", "request.timeout.ms", "resolve_cb", "retries",
    "retry.backoff.max.ms", "retry.backoff.ms", "security.protocol", "statistics.interval.ms",
    "test.mock.num.brokers",
    "topic.metadata.propagation.max.ms", "topic.metadata.refresh.fast.interval.ms",
    "topic.metadata.refresh.interval.ms", "topic.metadata.refresh.sparse", "topic.blacklist",
))
IGNORED_PREFIXES = ("ssl.", "ssl_", "sasl.", "socket.", "https.", "oauthbearer.")

# Keys or values the embedded clients do not offer, with what to do instead.
UNSUPPORTED = {
    "group.protocol=consumer": "the KIP-848 consumer group protocol is not implemented; "
                               "use group.protocol=classic",
    "partition.assignment.strategy=cooperative-sticky":
        "incremental (cooperative) rebalancing is not implemented; use range or roundrobin",
    "interceptors": "librdkafka interceptors are C plugins",
    "default.topic.config": None,        # merged into the configuration (see parse_config)
}

NO_LOG_DIRS = (
    "txn.{cls} is the embedded client of a logstore data directory: set 'log.dirs' to the "
    "directory to use. To reach a Kafka cluster (bootstrap.servers), use "
    "confluent_kafka.{cls} with the same configuration instead.")


@dataclass(frozen=True)
class ClientConfig:
    """A validated configuration: `values` by canonical name (every supported key, defaults
    filled in), the broker settings for Broker.open, and what was given and ignored."""

    values: dict
    given: frozenset
    broker: dict = field(default_factory=dict)
    ignored: tuple = ()

    def __getitem__(self, name: str):
        return self.values[name]

    def get(self, name: str, default=None):
        value = self.values.get(name)
        return default if value is None else value

    @property
    def log_dirs(self) -> str:
        return self.values[LOG_DIRS]


def invalid(message: str):
    return kafka_exception(KafkaError._INVALID_ARG, message)


def _coerce(key: Key, value):
    """The value of `key` from a Python value or librdkafka's string form."""
    kind = key.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad_value(key, value, "expected true or false")
    if kind == "int":
        return _coerce_int(key, value)
    if kind == "enum":
        found = key.choices.get(value.lower() if isinstance(value, str) else value)
        if found is None:
            raise _bad_value(key, value, f"expected one of {sorted(map(str, key.choices))}")
        return found
    if kind == "callable":
        if value is not None and not callable(value):
            raise _bad_value(key, value, "expected a callable")
        return value
    if kind == "list":
        return _coerce_list(key, value)
    if kind == "str":
        if not isinstance(value, str):
            raise _bad_value(key, value, "expected a string")
        return value
    return value


def _coerce_int(key: Key, value) -> int:
    if isinstance(value, bool):
        raise _bad_value(key, value, "expected an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _bad_value(key, value, "expected an integer") from None
    if (key.minimum is not None and number < key.minimum) or (
            key.maximum is not None and number > key.maximum):
        raise _bad_value(key, value, f"expected {key.minimum}..{key.maximum}")
    return number


def _coerce_list(key: Key, value) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(name.strip() for name in names if name.strip())
    for name in names:
        if name not in ASSIGNORS:
            reason = UNSUPPORTED.get(f"{key.name}={name}")
            raise _bad_value(key, value, reason or f"expected assignors from {ASSIGNORS}")
    if not names:
        raise _bad_value(key, value, "expected at least one assignor")
    return names


def _bad_value(key: Key, value, why: str):
    special = UNSUPPORTED.get(f"{key.name}={value}")
    return invalid(f'Invalid value "{value}" for configuration property "{key.name}": '
                   f"{special or why}")


def _merge(conf: dict | None, kwargs: dict) -> dict:
    merged = {}
    for name, value in dict(conf or {}).items():
        if name == "default.topic.config" and isinstance(value, dict):
            merged.update(value)
        else:
            merged[name] = value
    for name, value in kwargs.items():
        merged[name if name in CALLBACK_KEYS or name in ALIASES else name.replace("_", ".")] \
            = value
    return merged


def is_ignored(name: str) -> bool:
    return name in IGNORED or name.startswith(IGNORED_PREFIXES)


def parse_config(conf: dict | None, kwargs: dict | None = None, *,
                 client: str = "Producer") -> ClientConfig:
    """Validate `conf` (+ confluent-style kwargs) for the embedded `client` class name."""
    if conf is not None and not isinstance(conf, dict):
        raise TypeError(f"expected configuration dict, got {type(conf).__name__}")
    merged = _merge(conf, kwargs or {})
    values = {name: key.default for name, key in SUPPORTED.items()}
    broker, ignored, given = {}, [], set()
    for name, value in merged.items():
        if not isinstance(name, str):
            raise invalid(f"configuration property names are strings, got {name!r}")
        canonical = ALIASES.get(name, name)
        key = SUPPORTED.get(canonical)
        if CLIENT_ONLY.get(canonical, client) != client:
            key = None
        if key is not None:
            values[canonical] = _coerce(key, value)
            given.add(canonical)
        elif name.startswith(BROKER_PREFIX) and len(name) > len(BROKER_PREFIX):
            broker[name[len(BROKER_PREFIX):]] = value
        elif is_ignored(name):
            ignored.append(name)
        elif UNSUPPORTED.get(name):
            raise invalid(f'Configuration property "{name}" is not supported by the embedded '
                          f"client: {UNSUPPORTED[name]}")
        else:
            raise invalid(f'No such configuration property: "{name}" (unknown configuration '
                          f"property for the embedded txn.{client})")
    if not values[LOG_DIRS]:
        raise invalid(NO_LOG_DIRS.format(cls=client))
    _finalize(values, given, client)
    return ClientConfig(values, frozenset(given), broker, tuple(ignored))


def _finalize(values: dict, given: set, client: str) -> None:
    """librdkafka's rd_kafka_conf_finalize rules between keys."""
    what = client.lower()
    if values["transactional.id"] is not None:
        if ENABLE_IDEMPOTENCE in given and not values[ENABLE_IDEMPOTENCE]:
            raise invalid(f"Failed to create {what}: `transactional.id` requires "
                          "`enable.idempotence=true`")
        values[ENABLE_IDEMPOTENCE] = True
    if values[ENABLE_IDEMPOTENCE]:
        if "acks" in given and values["acks"] != ACKS_ALL:
            raise invalid(f"Failed to create {what}: `acks` must be set to `all` when "
                          "`enable.idempotence` is true")
        values["acks"] = ACKS_ALL
    if values["max.poll.interval.ms"] < values["session.timeout.ms"]:
        raise invalid(f"Failed to create {what}: `max.poll.interval.ms`must be >= "
                      "`session.timeout.ms`")
    if client == "Consumer" and not values["group.id"]:
        raise ValueError("Failed to create consumer: group.id must be set")


def open_broker(config: ClientConfig):
    """The shared engine of config.log_dirs (Broker.open, reference-counted): release() it
    when the client closes. A bad `broker.` setting is an _INVALID_ARG KafkaException; a
    directory that cannot be opened (locked by another process, unreadable) is _FS."""
    from logstore.errors import InvalidConfiguration, LogstoreError
    from txn.broker import Broker
    try:
        return Broker.open(config.log_dirs, config.broker or None)
    except InvalidConfiguration as exc:
        raise invalid(f"invalid broker configuration for {config.log_dirs!r}: {exc}") from exc
    except (LogstoreError, OSError) as exc:
        raise kafka_exception(KafkaError._FS, f"cannot open the embedded store "
                              f"{config.log_dirs!r}: {exc}") from exc
