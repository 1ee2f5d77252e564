"""logstore.partitioner: Kafka's murmur2 and default partition choice for keyed records.

Method: the known answers of Kafka's own UtilsTest.testMurmur2, then a cross-check over random
keys of every length against kafka-python's independent port of the same Java function (which
returns the unsigned form), and the partition formula toPositive(murmur2(key)) % n."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from logstore.partitioner import murmur2, partition_for_key, to_positive

KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("key, expected", sorted(KAFKA_VECTORS.items()))
def test_murmur2_matches_kafka_known_answers(key, expected):
    assert murmur2(key) == expected


def test_murmur2_takes_any_bytes_like_and_covers_every_tail_length():
    # Lengths 0..8 exercise the 0-3 byte tails with zero, one and two whole words.
    data = b"\x00\x7f\x80\xff\x01\xfe\x10\xef"
    for n in range(len(data) + 1):
        expected = kafka_python_murmur2(data[:n])
        assert murmur2(data[:n]) & 0xFFFFFFFF == expected
        assert murmur2(bytearray(data[:n])) == murmur2(memoryview(data[:n]))


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_an_independent_port(key):
    result = murmur2(key)
    assert -(2**31) <= result < 2**31
    assert result & 0xFFFFFFFF == kafka_python_murmur2(key)


@given(st.binary(max_size=32), st.integers(min_value=1, max_value=1000))
def test_partition_for_key_is_kafkas_formula(key, partitions):
    expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions
    assert partition_for_key(key, partitions) == expected


def test_to_positive_clears_the_sign_bit_like_java():
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0
    assert to_positive(5) == 5
    assert partition_for_key(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7


def test_partition_for_key_rejects_a_topic_without_partitions():
    with pytest.raises(ValueError):
        partition_for_key(b"k", 0)
