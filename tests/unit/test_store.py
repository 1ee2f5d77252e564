"""LogStore: topics and partitions on disk, configs kept, exclusive lock, checkpoints, clean
shutdown marker. Real directories; a real second process for the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from logstore import checkpoint
from logstore.errors import (InvalidConfiguration, InvalidPartitions, InvalidTopic, LogDirLocked,
                             TopicAlreadyExists, UnknownTopicOrPartition)
from logstore.store import LogStore


def test_topics_are_created_with_partitions_and_config_kept_on_disk(tmp_path):
    with LogStore(tmp_path / "data") as store:
        info = store.create_topic("orders", partitions=3, config={"segment.bytes": "2048"})
        assert info.config.segment_bytes == 2048
        assert {"orders-0", "orders-1", "orders-2"} <= set(os.listdir(tmp_path / "data"))
        store.log("orders", 2).append([b"x"])
    with LogStore(tmp_path / "data") as store:
        info = store.topic("orders")
        assert info.partitions == 3 and info.config.segment_bytes == 2048
        assert store.log("orders", 2).log_end_offset == 1
        assert store.log("orders", 2).config.segment_bytes == 2048


def test_topic_errors_use_kafka_names(tmp_path):
    with LogStore(tmp_path / "data") as store:
        store.create_topic("a")
        with pytest.raises(TopicAlreadyExists):
            store.create_topic("a")
        assert store.create_topic("a", if_not_exists=True).name == "a"
        for bad in ("", ".", "..", "has space", "x" * 250, "slash/y"):
            with pytest.raises(InvalidTopic):
                store.create_topic(bad)
        with pytest.raises(InvalidPartitions):
            store.create_topic("b", partitions=0)
        with pytest.raises(InvalidConfiguration):
            store.create_topic("c", config={"segment.bytez": 1})
        with pytest.raises(InvalidConfiguration, match="compaction"):
            store.create_topic("d", config={"cleanup.policy": "compact"})
        with pytest.raises(UnknownTopicOrPartition):
            store.log("a", 1)
        with pytest.raises(UnknownTopicOrPartition):
            store.log("nope", 0)
        assert set(store.topics()) == {"a"}


def test_partitions_grow_and_topics_are_deleted(tmp_path):
    with LogStore(tmp_path / "data") as store:
        store.create_topic("t", partitions=1)
        store.log("t", 0).append([b"1"])
        store.create_partitions("t", 3)
        store.log("t", 2).append([b"2"])
        with pytest.raises(InvalidPartitions):
            store.create_partitions("t", 2)
        store.delete_topic("t")
        assert not store.has_topic("t")
        assert not any(n.startswith("t-") for n in os.listdir(tmp_path / "data"))
        store.create_topic("t")
        assert store.log("t", 0).log_end_offset == 0


def test_close_writes_kafka_checkpoints_and_the_clean_shutdown_marker(tmp_path):
    path = tmp_path / "data"
    with LogStore(path) as store:
        store.create_topic("t", partitions=2)
        store.log("t", 0).append([b"a", b"b"])
        store.log("t", 1).append([b"c"])
    assert (path / ".kafka_cleanshutdown").exists()
    points = checkpoint.read_checkpoint(str(path / checkpoint.RECOVERY_POINT_FILE))
    assert points == {("t", 0): 2, ("t", 1): 1}
    text = (path / checkpoint.RECOVERY_POINT_FILE).read_text().splitlines()
    assert text[:2] == ["0", "2"] and "t 0 2" in text
    props = (path / "meta.properties").read_text()
    assert "cluster.id=" in props and "node.id=0" in props
    with LogStore(path) as store:
        assert store.clean_shutdown
        assert not (path / ".kafka_cleanshutdown").exists()   # removed while open
        assert store.log("t", 0).recovery_report.segments_recovered == []


def test_an_unclean_store_recovers_its_partitions_on_open(tmp_path):
    path = tmp_path / "data"
    store = LogStore(path)
    store.create_topic("t")
    store.log("t", 0).append([b"a"])
    store.abandon()                               # what kill -9 leaves: no marker, no trim
    with LogStore(path) as store:
        assert not store.clean_shutdown
        log = store.log("t", 0)
        assert log.recovery_report.segments_recovered == [0]
        assert log.log_end_offset == 1


def test_a_second_process_cannot_open_the_store_and_is_told_who_holds_it(tmp_path):
    with LogStore(tmp_path / "data"):
        code = ("import sys\nfrom logstore.store import LogStore\nfrom logstore.errors import "
                "LogDirLocked\ntry:\n    LogStore(sys.argv[1])\nexcept LogDirLocked as e:\n"
                "    print(e)\n    sys.exit(3)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 3, proc.stderr
        assert f"pid {os.getpid()}" in proc.stdout
        with pytest.raises(LogDirLocked):
            LogStore(tmp_path / "data")


def test_topics_file_is_plain_json(tmp_path):
    with LogStore(tmp_path / "data") as store:
        store.create_topic("x", partitions=2, config={"retention.ms": 1000})
    data = json.loads((tmp_path / "data" / "topics.json").read_text())
    assert data["x"]["partitions"] == 2 and data["x"]["config"] == {"retention.ms": 1000}


def test_an_unclean_open_recovers_every_partition_not_only_those_used(tmp_path):
    path = tmp_path / "data"
    store = LogStore(path)
    store.create_topic("t", partitions=3)
    for p in range(3):
        store.log("t", p).append([b"x"] * (p + 1))
    store.abandon()
    with LogStore(path) as store:
        assert len(store.open_logs()) == 3            # all recovered at open
        assert all(log.recovery_report.segments_recovered == [0] for log in store.open_logs())
        store.log("t", 0).append([b"y"])              # only one partition used afterwards
    # The autouse checker then finds every partition trimmed and consistent.
