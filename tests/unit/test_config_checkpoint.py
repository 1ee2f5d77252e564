"""LogConfig keys, defaults and bounds; Kafka checkpoint file format."""

from __future__ import annotations

import pytest

from logstore import checkpoint
from logstore.config import LogConfig, parse_key_values
from logstore.errors import InvalidConfiguration


def test_defaults_are_kafkas():
    c = LogConfig()
    assert c.segment_bytes == 1073741824 and c.segment_ms == 604800000
    assert c.segment_index_bytes == 10485760 and c.index_interval_bytes == 4096
    assert c.max_message_bytes == 1048588 and c.retention_ms == 604800000
    assert c.flush_messages == 2**63 - 1 and c.retention_bytes == -1


def test_values_are_parsed_and_bounded():
    c = LogConfig.from_dict({"segment.bytes": "100", "preallocate": "true",
                             "message.timestamp.type": "LogAppendTime"})
    assert c.segment_bytes == 100 and c.preallocate and c.log_append_time
    for bad in ({"segment.bytes": 13}, {"segment.bytes": "x"}, {"flush.messages": 0},
                {"message.timestamp.type": "Now"}, {"preallocate": "maybe"},
                {"retention.ms": -2}, {"segment.bytes": True}):
        with pytest.raises(InvalidConfiguration):
            LogConfig.from_dict(bad)


def test_unknown_and_unsupported_keys_name_the_key():
    with pytest.raises(InvalidConfiguration, match="segment.byte"):
        LogConfig.from_dict({"segment.byte": 1})
    with pytest.raises(InvalidConfiguration, match="one replica"):
        LogConfig.from_dict({"min.insync.replicas": 2})


def test_overrides_round_trip():
    c = LogConfig.from_dict({"retention.bytes": 5})
    assert c.to_dict(only_overrides=True) == {"retention.bytes": 5}
    assert parse_key_values(["a=1", "b = x"]) == {"a": "1", "b": "x"}
    with pytest.raises(InvalidConfiguration):
        parse_key_values(["novalue"])


def test_checkpoint_format_round_trips_and_rejects_damage(tmp_path):
    path = str(tmp_path / "cp")
    checkpoint.write_checkpoint(path, {("a", 0): 5, ("b-c", 12): 0})
    assert open(path).read() == "0\n2\na 0 5\nb-c 12 0\n"
    assert checkpoint.read_checkpoint(path) == {("a", 0): 5, ("b-c", 12): 0}
    assert checkpoint.read_checkpoint(str(tmp_path / "missing")) == {}
    for bad in ("1\n0\n", "0\n2\na 0 5\n", "0\n1\na x 5\n", "0\n1\na 0 -1\n", "0\n"):
        with pytest.raises(checkpoint.CorruptCheckpoint):
            checkpoint.parse_checkpoint(bad)
