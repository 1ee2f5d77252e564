"""`LogStore`: a data directory of topics and partitions (Kafka's LogManager for one log dir).

Layout of `<dir>`:

    .lock                               exclusive flock; holder's pid/host/command inside
    meta.properties                     Kafka's: version, cluster.id, node.id, directory.id
    topics.json                         {topic: {partitions, config overrides, topic_id}}
    recovery-point-offset-checkpoint    Kafka's checkpoint files (see checkpoint.py)
    log-start-offset-checkpoint
    replication-offset-checkpoint
    .kafka_cleanshutdown                present only between a clean close and the next open
    <topic>-<partition>/                one Log per partition (segments, indexes, snapshots)

Invariants: topics.json is written atomically before partition directories are created and after
they are removed, so a crash leaves at worst an empty directory the next open removes, or a topic
whose directories are created again. After a clean shutdown logs open lazily on first use; after
an unclean one every partition is opened (and recovered) by the constructor, so a later clean
close never marks an unrecovered partition clean.

Thread-safety: every public method may be called from any thread; topic changes and log opening
hold the store lock; the returned Log objects are themselves thread-safe.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable

from logstore import _ffi, checkpoint, fsutil
from logstore.config import LogConfig
from logstore.errors import (CorruptStoreMetadata, InvalidConfiguration, InvalidPartitions,
                             InvalidTopic, LogClosed, TopicAlreadyExists,
                             UnknownTopicOrPartition)
from logstore.lock import DirectoryLock
from logstore.log import CLEAN_SHUTDOWN_FILE, Log
from logstore.scheduler import Scheduler, wall_ms

logger = logging.getLogger("logstore.store")

TOPICS_FILE = "topics.json"
META_FILE = "meta.properties"
TOPIC_NAME_MAX = 249
PARTITIONS_MAX = 100000
TOPIC_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9._-]+$")
RETENTION_CHECK_INTERVAL_MS = 300000          # log.retention.check.interval.ms
CHECKPOINT_INTERVAL_MS = 60000                # log.flush.offset.checkpoint.interval.ms
DELETE_DIR_SUFFIX = "-delete"


def validate_topic_name(name: str) -> None:
    """Kafka's Topic.validate."""
    if not isinstance(name, str) or not name:
        raise InvalidTopic("topic name must be a non-empty string")
    if name in (".", ".."):
        raise InvalidTopic(f"topic name cannot be {name!r}")
    if len(name) > TOPIC_NAME_MAX:
        raise InvalidTopic(f"topic name is {len(name)} characters; the limit is {TOPIC_NAME_MAX}")
    if not TOPIC_NAME_PATTERN.match(name):
        raise InvalidTopic(f"topic name {name!r} may only contain ASCII letters, digits, "
                           "'.', '_' and '-'")


def new_uuid() -> str:
    """A Kafka-style id: URL-safe base64 of 16 random bytes, no padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class TopicInfo:
    name: str
    partitions: int
    overrides: dict[str, object] = field(default_factory=dict)
    topic_id: str = ""
    config: LogConfig = field(default_factory=LogConfig)

    @property
    def internal(self) -> bool:
        return self.name.startswith("__")

    def to_json(self) -> dict:
        return {"partitions": self.partitions, "config": self.overrides, "topic_id": self.topic_id}


class LogStore:
    def __init__(self, path: str, config: dict | None = None, *,
                 time_ms: Callable[[], int] = wall_ms, background: bool = True,
                 retention_check_interval_ms: int = RETENTION_CHECK_INTERVAL_MS,
                 checkpoint_interval_ms: int = CHECKPOINT_INTERVAL_MS):
        """Open (creating if needed) the data directory `path`. `config` holds default topic
        configs (Kafka topic names) for every topic; topics override them."""
        self.path = os.path.abspath(path)
        fsutil.make_dirs(self.path)
        self.default_config = LogConfig.from_dict(config or {})
        self.time_ms = time_ms
        self._lock = threading.RLock()
        self._checkpoint_lock = threading.Lock()   # checkpoint maps and files; never nests
        self._dir_lock = DirectoryLock(self.path)
        self._dir_lock.acquire()
        self._closed = False
        try:
            self._open_files()
        except BaseException:
            self._dir_lock.release()
            raise
        self._logs: dict[tuple[str, int], Log] = {}
        self.scheduler = Scheduler(name="logstore-store", time_ms=time_ms, start=background)
        if not self.clean_shutdown and self._topics:
            # After a crash every partition is recovered now, as Kafka's LogManager does at
            # startup: logs otherwise open lazily, and the next clean close would write the
            # clean-shutdown marker over partitions this session never recovered.
            try:
                self.all_logs()
            except BaseException:
                self.scheduler.shutdown()
                for log in self._logs.values():
                    log.close()
                self._dir_lock.release()
                raise
        self.scheduler.schedule("retention", self.run_retention, retention_check_interval_ms)
        self.scheduler.schedule("checkpoints", self.write_checkpoints, checkpoint_interval_ms)

    def _open_files(self) -> None:
        marker = os.path.join(self.path, CLEAN_SHUTDOWN_FILE)
        self.clean_shutdown = os.path.exists(marker)
        self.cluster_id = self._load_meta()
        self._topics = self._load_topics()
        try:
            self._recovery_points = checkpoint.read_checkpoint(
                os.path.join(self.path, checkpoint.RECOVERY_POINT_FILE))
            self._start_offsets = checkpoint.read_checkpoint(
                os.path.join(self.path, checkpoint.LOG_START_OFFSET_FILE))
        except checkpoint.CorruptCheckpoint as exc:
            logger.warning("%s; every partition will be recovered from offset 0", exc)
            self._recovery_points, self._start_offsets = {}, {}
            self.clean_shutdown = False
        self._remove_deleted_dirs()
        if self.clean_shutdown:
            os.unlink(marker)
            fsutil.fsync_dir(self.path)

    def _load_meta(self) -> str:
        path = os.path.join(self.path, META_FILE)
        text = _read_metadata(path)
        if text is not None:
            props = dict(line.split("=", 1) for line in text.splitlines()
                         if "=" in line and not line.startswith("#"))
            if props.get("cluster.id"):
                return props["cluster.id"]
        cluster_id = new_uuid()
        fsutil.atomic_write(path, (f"version=1\ncluster.id={cluster_id}\nnode.id=0\n"
                                   f"directory.id={new_uuid()}\n").encode())
        return cluster_id

    def _load_topics(self) -> dict[str, TopicInfo]:
        path = os.path.join(self.path, TOPICS_FILE)
        text = _read_metadata(path)
        topics = {}
        try:
            entries = json.loads(text) if text else {}
            for name, entry in entries.items():
                validate_topic_name(name)
                partitions = int(entry["partitions"])
                if not 1 <= partitions <= PARTITIONS_MAX:
                    raise ValueError(f"topic {name!r} has {partitions} partitions")
                overrides = entry.get("config", {})
                topics[name] = TopicInfo(name, partitions, overrides, entry.get("topic_id", ""),
                                         LogConfig.from_dict(overrides, self.default_config))
        except (ValueError, KeyError, TypeError, AttributeError, InvalidTopic) as exc:
            raise CorruptStoreMetadata(
                f"{path}: unreadable topic list ({type(exc).__name__}: {exc}); restore it "
                "(it names every topic, its partition count and its config)") from None
        return topics

    def _save_topics(self) -> None:
        data = {name: info.to_json() for name, info in sorted(self._topics.items())}
        fsutil.atomic_write(os.path.join(self.path, TOPICS_FILE),
                            json.dumps(data, indent=1, sort_keys=True).encode())

    def _remove_deleted_dirs(self) -> None:
        for name in os.listdir(self.path):
            if name.endswith(DELETE_DIR_SUFFIX):
                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)

    # -- topics -----------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1, config: dict | None = None, *,
                     if_not_exists: bool = False) -> TopicInfo:
        validate_topic_name(name)
        if not isinstance(partitions, int) or not 1 <= partitions <= PARTITIONS_MAX:
            raise InvalidPartitions(f"partitions must be an integer in [1, {PARTITIONS_MAX}], "
                                    f"got {partitions!r}")
        overrides = dict(config or {})
        log_config = LogConfig.from_dict(overrides, self.default_config)
        with self._lock:
            self._check_open()
            if name in self._topics:
                if if_not_exists:
                    return self._topics[name]
                raise TopicAlreadyExists(f"topic {name!r} already exists")
            info = TopicInfo(name, partitions, overrides, new_uuid(), log_config)
            self._topics[name] = info
            self._save_topics()
            for partition in range(partitions):
                os.makedirs(self._partition_dir(name, partition), exist_ok=True)
            fsutil.fsync_dir(self.path)
            return info

    def create_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow a topic to `total` partitions (never shrinks, as Kafka)."""
        with self._lock:
            info = self.topic(name)
            if not isinstance(total, int) or total <= info.partitions or total > PARTITIONS_MAX:
                raise InvalidPartitions(f"topic {name!r} has {info.partitions} partitions; the "
                                        f"new count must be larger, got {total!r}")
            info.partitions = total
            self._save_topics()
            for partition in range(total):
                os.makedirs(self._partition_dir(name, partition), exist_ok=True)
            fsutil.fsync_dir(self.path)
            return info

    def alter_topic_config(self, name: str, overrides: dict) -> TopicInfo:
        """Replace a topic's overrides; open logs of the topic pick the new config up."""
        with self._lock:
            info = self.topic(name)
            new_config = LogConfig.from_dict(overrides, self.default_config)
            info.overrides, info.config = dict(overrides), new_config
            self._save_topics()
            for (topic, _), log in self._logs.items():
                if topic == name:
                    log.config = new_config
            return info

    def delete_topic(self, name: str) -> None:
        """Close the topic's logs and remove its directories (renamed to *-delete first)."""
        with self._lock:
            info = self.topic(name)
            doomed = []
            for partition in range(info.partitions):
                log = self._logs.pop((name, partition), None)
                if log is not None:
                    log.close()
                src = self._partition_dir(name, partition)
                if os.path.isdir(src):
                    dst = f"{src}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
                    _ffi.rename(src, dst, f"delete topic {name!r}: rename {src}")
                    doomed.append(dst)
                with self._checkpoint_lock:
                    self._recovery_points.pop((name, partition), None)
                    self._start_offsets.pop((name, partition), None)
            del self._topics[name]
            self._save_topics()
            fsutil.fsync_dir(self.path)
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)

    def topics(self) -> dict[str, TopicInfo]:
        with self._lock:
            return dict(self._topics)

    def topic(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicOrPartition(f"unknown topic {name!r}")
        return info

    def has_topic(self, name: str) -> bool:
        return name in self._topics

    # -- logs -------------------------------------------------------------------------------

    def _partition_dir(self, topic: str, partition: int) -> str:
        return os.path.join(self.path, f"{topic}-{partition}")

    def log(self, topic: str, partition: int) -> Log:
        """The partition's Log, opened (and recovered if needed) on first use."""
        key = (topic, partition)
        log = self._logs.get(key)
        if log is not None:
            return log
        with self._lock:
            self._check_open()
            log = self._logs.get(key)
            if log is not None:
                return log
            info = self.topic(topic)
            if not isinstance(partition, int) or not 0 <= partition < info.partitions:
                raise UnknownTopicOrPartition(
                    f"topic {topic!r} has partitions 0..{info.partitions - 1}, not {partition!r}")
            log = Log(self._partition_dir(topic, partition), info.config, topic=topic,
                      partition=partition, recovery_point=self._recovery_points.get(key, 0),
                      log_start_offset=self._start_offsets.get(key, 0),
                      clean_shutdown=self.clean_shutdown, scheduler=self.scheduler,
                      time_ms=self.time_ms)
            log.on_log_start_change = self._log_start_changed
            self._logs[key] = log
            return log

    def _log_start_changed(self, log: Log) -> None:
        """Persist a log start offset moved by DeleteRecords or truncation right away, so a
        crash cannot bring back records the caller deleted."""
        with self._checkpoint_lock:
            for key, open_log in list(self._logs.items()):
                self._start_offsets[key] = open_log.log_start_offset
            self._start_offsets[(log.topic, log.partition)] = log.log_start_offset
            checkpoint.write_checkpoint(
                os.path.join(self.path, checkpoint.LOG_START_OFFSET_FILE), self._start_offsets)

    def open_logs(self) -> list[Log]:
        return list(self._logs.values())

    def all_logs(self) -> list[Log]:
        """Open every partition of every topic (the checker and the CLI use this)."""
        return [self.log(name, p) for name, info in self.topics().items()
                for p in range(info.partitions)]

    # -- maintenance ------------------------------------------------------------------------

    def flush(self) -> None:
        for log in self.open_logs():
            log.flush()

    def run_retention(self) -> int:
        return sum(log.apply_retention() for log in self.open_logs())

    def write_checkpoints(self) -> None:
        """Write the three checkpoint files. Takes only the checkpoint lock (never the store
        lock), so a Log holding its own lock may call in through _log_start_changed."""
        if self._closed:
            return
        with self._checkpoint_lock:
            logs = list(self._logs.items())
            for key, log in logs:
                self._recovery_points[key] = log.recovery_point
                self._start_offsets[key] = log.log_start_offset
            hws = {key: log.high_watermark for key, log in logs}
            checkpoint.write_checkpoint(
                os.path.join(self.path, checkpoint.RECOVERY_POINT_FILE), self._recovery_points)
            checkpoint.write_checkpoint(
                os.path.join(self.path, checkpoint.LOG_START_OFFSET_FILE), self._start_offsets)
            checkpoint.write_checkpoint(
                os.path.join(self.path, checkpoint.HIGH_WATERMARK_FILE), hws)

    def close(self) -> None:
        """Flush and close every log, write the checkpoints and the clean-shutdown marker."""
        with self._lock:
            if self._closed:
                return
            self.scheduler.shutdown()
            clean = True
            for log in self._logs.values():
                clean = clean and not log.offline
                log.close()
            try:
                if clean:
                    self.write_checkpoints()
                    fsutil.atomic_write(os.path.join(self.path, CLEAN_SHUTDOWN_FILE), b"")
            finally:
                self._closed = True
                self._dir_lock.release()

    def abandon(self) -> None:
        """Let go of everything with no flush, checkpoint or marker: what kill -9 leaves (a
        fault-injection seam for tests; the next open recovers)."""
        with self._lock:
            if self._closed:
                return
            self.scheduler.shutdown()
            for log in self._logs.values():
                log.abandon()
            self._closed = True
            self._dir_lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(f"log store {self.path} is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogStore({self.path!r}, topics={len(self._topics)})"


def _read_metadata(path: str) -> str | None:
    try:
        return fsutil.read_text(path)
    except UnicodeDecodeError as exc:
        raise CorruptStoreMetadata(f"{path}: not UTF-8 text ({exc})") from None


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """'orders-3' -> ('orders', 3); None for anything else."""
    head, sep, tail = name.rpartition("-")
    if not sep or not head or not tail.isdigit():
        return None
    return head, int(tail)


__all__ = ["LogStore", "TopicInfo", "validate_topic_name", "parse_partition_dir",
           "InvalidConfiguration"]
