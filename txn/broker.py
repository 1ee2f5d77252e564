"""`Broker`: the embedded engine behind every client of one data directory.

One Broker per directory per process (`Broker.open(path)` is reference-counted, so every
Producer, Consumer and AdminClient naming the same `log.dirs` shares it). It owns:

  - the LogStore (topics, partitions, the directory lock);
  - a `TxnPartition` per partition in use: the Log plus its producer state, markers, LSO and
    read_committed fetch (txn/partition.py);
  - the `TransactionCoordinator` (txn/coordinator.py) over `__transaction_state-N`;
  - the `GroupCoordinator` (txn/group_coordinator.py) over `__consumer_offsets-N`;
  - the producer-id allocator and the coordinator epoch, persisted in `broker-state.json`;
  - periodic tasks on the store's scheduler (transaction timeouts, producer-id expiry,
    transactional-id expiry, group session expiry).

Broker-level settings use Kafka's broker config names (`transaction.max.timeout.ms`,
`offsets.topic.num.partitions`, ...); topic defaults may be given with their topic names.

Thread-safety: all public methods may be called from any thread. Partition objects are created
under the broker lock; each partition serializes its own appends.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from logstore import fsutil
from logstore.config import KEYS_BY_NAME as TOPIC_KEYS
from logstore.errors import InvalidConfiguration, UnknownTopicOrPartition
from logstore.scheduler import wall_ms
from logstore.store import LogStore

logger = logging.getLogger("txn.broker")

TRANSACTION_STATE_TOPIC = "__transaction_state"
CONSUMER_OFFSETS_TOPIC = "__consumer_offsets"
BROKER_STATE_FILE = "broker-state.json"
PRODUCER_ID_BLOCK_SIZE = 1000                       # ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
INTERNAL_TOPIC_CONFIG = {"segment.bytes": 104857600, "retention.ms": -1}

BROKER_DEFAULTS: dict[str, object] = {
    "transaction.max.timeout.ms": 900000,
    "transactional.id.expiration.ms": 604800000,
    "producer.id.expiration.ms": 86400000,
    "producer.id.expiration.check.interval.ms": 600000,
    "transaction.state.log.num.partitions": 50,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 10000,
    "transaction.remove.expired.transaction.cleanup.interval.ms": 3600000,
    "transaction.partition.verification.enable": True,
    "offsets.topic.num.partitions": 50,
    "offsets.retention.ms": 604800000,
    "offset.metadata.max.bytes": 4096,
    "group.initial.rebalance.delay.ms": 0,         # Kafka: 3000; an embedded group has no
    "group.min.session.timeout.ms": 6000,          # members arriving over a network
    "group.max.session.timeout.ms": 1800000,
    "auto.create.topics.enable": True,
    "num.partitions": 1,
}


def _logged(fn, *args):
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - a failing listener must not stop later completions
        logger.exception("transaction completion %r failed", fn)
        raise


def java_string_hash(text: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed int32."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key: str, partitions: int) -> int:
    """Kafka's Utils.abs(key.hashCode()) % partitions (transactional ids and group ids)."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


@dataclass
class BrokerConfig:
    values: dict[str, object]

    @classmethod
    def from_dict(cls, config: dict | None) -> tuple[BrokerConfig, dict]:
        """(broker settings, topic defaults) from one dict of Kafka names."""
        values = dict(BROKER_DEFAULTS)
        topic_defaults = {}
        for name, value in (config or {}).items():
            if name in BROKER_DEFAULTS:
                values[name] = _coerce(name, value, BROKER_DEFAULTS[name])
            elif name in TOPIC_KEYS:
                topic_defaults[name] = value
            elif name.startswith("log.") and name[4:] in TOPIC_KEYS:
                topic_defaults[name[4:]] = value
            else:
                raise InvalidConfiguration(f"unknown broker config {name!r}")
        return cls(values), topic_defaults

    def __getitem__(self, name: str):
        return self.values[name]


def _coerce(name: str, value, default):
    if isinstance(default, bool):
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidConfiguration(f"{name} must be an integer, got {value!r}") from None


class BrokerState:
    """`broker-state.json`: the producer-id block high-water mark and the coordinator epoch.

    Producer ids are claimed in blocks of 1000; the end of the claimed block is persisted before
    any id of it is handed out, so ids are never reused after a crash. The coordinator epoch grows
    by one at each open (a restarted coordinator is a new leader: markers it writes carry a
    higher epoch, as after a Kafka coordinator failover)."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, BROKER_STATE_FILE)
        self._lock = threading.Lock()
        text = fsutil.read_text(self.path)
        data = json.loads(text) if text else {}
        self.coordinator_epoch = int(data.get("coordinator_epoch", -1)) + 1
        self._block_end = int(data.get("producer_id_block_end", 0))
        self._next_id = self._block_end
        self._save()

    def _save(self) -> None:
        data = {"coordinator_epoch": self.coordinator_epoch,
                "producer_id_block_end": self._block_end}
        fsutil.atomic_write(self.path, json.dumps(data).encode())

    def next_producer_id(self) -> int:
        with self._lock:
            if self._next_id >= self._block_end:
                self._block_end = self._next_id + PRODUCER_ID_BLOCK_SIZE
                self._save()
            pid = self._next_id
            self._next_id += 1
            return pid


class Broker:
    _registry: dict[str, Broker] = {}
    _registry_lock = threading.Lock()

    @classmethod
    def open(cls, path: str, config: dict | None = None, **kwargs) -> Broker:
        """The shared Broker of `path` in this process (opened on first use). Each open must be
        paired with release(); the last release closes it."""
        key = os.path.realpath(path)
        with cls._registry_lock:
            broker = cls._registry.get(key)
            if broker is None or broker.closed:
                broker = cls(path, config, **kwargs)
                cls._registry[key] = broker
            elif config and broker.requested_config != config:
                logger.debug("Broker %s already open; ignoring a different config", key)
            broker._refs += 1
            return broker

    def release(self) -> None:
        with Broker._registry_lock:
            self._refs -= 1
            if self._refs > 0:
                return
            Broker._registry.pop(os.path.realpath(self.path), None)
        self.close()

    def __init__(self, path: str, config: dict | None = None, *,
                 time_ms: Callable[[], int] = wall_ms, background: bool = True):
        self.path = os.path.abspath(path)
        self.requested_config = dict(config or {})
        self.config, topic_defaults = BrokerConfig.from_dict(config)
        self.time_ms = time_ms
        self._lock = threading.RLock()
        self._refs = 0
        self.closed = False
        # Notified after every append and marker: consumers long-poll on it (fetch.wait.max.ms)
        # instead of spinning. `data_version` counts notifications.
        self.data_cond = threading.Condition()
        self.data_version = 0
        self.store = LogStore(path, topic_defaults, time_ms=time_ms, background=background)
        # One thread runs transaction-completion work (marker listeners) in order, outside every
        # partition and coordinator lock, as Kafka's scheduleHandleTxnCompletion.
        self._completions = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txn-completion")
        self._partitions: dict[tuple[str, int], object] = {}
        try:
            self.state = BrokerState(self.store.path)
            self._create_internal_topics()
            from txn.coordinator import TransactionCoordinator
            from txn.group_coordinator import GroupCoordinator
            self.group_coordinator = GroupCoordinator(self)
            self.transaction_coordinator = TransactionCoordinator(self)
            self._schedule_tasks()
        except BaseException:
            self._completions.shutdown(wait=True)
            for partition in list(self._partitions.values()):
                partition.close()
            self.store.close()
            raise

    # -- topics and partitions --------------------------------------------------------------

    def _create_internal_topics(self) -> None:
        for topic, key in ((TRANSACTION_STATE_TOPIC, "transaction.state.log.num.partitions"),
                           (CONSUMER_OFFSETS_TOPIC, "offsets.topic.num.partitions")):
            self.store.create_topic(topic, partitions=self.config[key],
                                    config=INTERNAL_TOPIC_CONFIG, if_not_exists=True)

    def ensure_topic(self, topic: str) -> None:
        """Auto-create an unknown topic (auto.create.topics.enable, num.partitions)."""
        if self.store.has_topic(topic):
            return
        if not self.config["auto.create.topics.enable"]:
            raise UnknownTopicOrPartition(f"unknown topic {topic!r} "
                                          "(auto.create.topics.enable=false)")
        self.store.create_topic(topic, partitions=self.config["num.partitions"],
                                if_not_exists=True)

    def delete_topic(self, topic: str) -> None:
        """Delete a topic (AdminClient.delete_topics) and forget its open partitions, so a
        topic created again under the name starts afresh."""
        with self._lock:
            self.store.delete_topic(topic)
            for key in [k for k in self._partitions if k[0] == topic]:
                del self._partitions[key]
        self.notify_data()

    def partitions_of(self, topic: str) -> int:
        return self.store.topic(topic).partitions

    def partition(self, topic: str, partition: int):
        """The TxnPartition of topic-partition (opened, and its producer state loaded, lazily)."""
        key = (topic, partition)
        found = self._partitions.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._partitions.get(key)
            if found is None:
                from txn.partition import TxnPartition
                found = TxnPartition(self, self.store.log(topic, partition))
                self._partitions[key] = found
            return found

    def open_partitions(self) -> list:
        return list(self._partitions.values())

    def transaction_state_partition(self, transactional_id: str) -> int:
        """The __transaction_state partition of an id. As Kafka, the existing topic's partition
        count decides (a changed *.num.partitions setting never moves an id)."""
        return partition_for(transactional_id, self.partitions_of(TRANSACTION_STATE_TOPIC))

    def offsets_partition(self, group_id: str) -> int:
        return partition_for(group_id, self.partitions_of(CONSUMER_OFFSETS_TOPIC))

    def notify_data(self) -> None:
        """Wake long-polling consumers: new data or a marker was appended somewhere."""
        with self.data_cond:
            self.data_version += 1
            self.data_cond.notify_all()

    def wait_for_data(self, seen_version: int, timeout_s: float) -> int:
        """Block until data_version moves past seen_version or the timeout; returns it."""
        with self.data_cond:
            if self.data_version == seen_version and timeout_s > 0:
                self.data_cond.wait(timeout_s)
            return self.data_version

    def run_completion(self, fn, *args) -> Future:
        """Run fn(*args) on the completion thread (in submission order)."""
        return self._completions.submit(_logged, fn, *args)

    def wait_for_completions(self, timeout_s: float | None = None) -> None:
        """Return once every completion submitted before the call has run."""
        self._completions.submit(lambda: None).result(timeout_s)

    def next_producer_id(self) -> int:
        return self.state.next_producer_id()

    @property
    def coordinator_epoch(self) -> int:
        return self.state.coordinator_epoch

    # -- maintenance ------------------------------------------------------------------------

    def _schedule_tasks(self) -> None:
        scheduler = self.store.scheduler
        tc = self.transaction_coordinator
        scheduler.schedule(
            "txn-timeouts", tc.abort_timed_out_transactions,
            self.config["transaction.abort.timed.out.transaction.cleanup.interval.ms"])
        scheduler.schedule(
            "txn-id-expiry", tc.expire_transactional_ids,
            self.config["transaction.remove.expired.transaction.cleanup.interval.ms"])
        scheduler.schedule(
            "producer-id-expiry", self.expire_producer_ids,
            self.config["producer.id.expiration.check.interval.ms"])
        scheduler.schedule("group-sessions", self.group_coordinator.expire_members, 1000)

    def expire_producer_ids(self) -> None:
        for partition in self.open_partitions():
            partition.expire_producer_ids()

    def flush(self) -> None:
        for partition in self.open_partitions():
            partition.log.flush()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.store.scheduler.shutdown()
            try:
                self._completions.shutdown(wait=True)
                self.transaction_coordinator.close()
                self.group_coordinator.close()
                for partition in self.open_partitions():
                    partition.close()
            finally:
                self.store.close()

    def abandon(self) -> None:
        """Let go without flushing or snapshots: the state kill -9 leaves (tests)."""
        with self._lock:
            self.closed = True
            self._completions.shutdown(wait=False, cancel_futures=True)
            self.store.abandon()
        with Broker._registry_lock:
            if Broker._registry.get(os.path.realpath(self.path)) is self:
                Broker._registry.pop(os.path.realpath(self.path))
