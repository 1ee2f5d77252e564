"""Consumer protocol Subscription / Assignment bytes: hand-built from
ConsumerProtocolSubscription.json and ConsumerProtocolAssignment.json (v0-v3, non-flexible),
then checked against kafka-python's independent encoder for every version."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txn import consumer_protocol as cp
from txn.errors import InvalidRequest, UnsupportedVersion

with warnings.catch_warnings():     # kafka-python's package import uses deprecated resources APIs
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.protocol.consumer.metadata import (ConsumerProtocolAssignment,
                                                  ConsumerProtocolSubscription)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


TOPICS = "00000002 0001 61 0002 6263"                 # ["a", "bc"]
OWNED = ("00000002" "0001 61 00000002 00000000 00000001"  # a: [0, 1]; bc: [2]
         "0002 6263 00000001 00000002")
OWNED_PAIRS = [("a", 0), ("a", 1), ("bc", 2)]
SUB = cp.Subscription(["a", "bc"], b"\x01\x02", OWNED_PAIRS, 5, "r1")

SUBSCRIPTION_BYTES = {
    0: "0000" + TOPICS + "00000002 0102",
    1: "0001" + TOPICS + "00000002 0102" + OWNED,
    2: "0002" + TOPICS + "00000002 0102" + OWNED + "00000005",
    3: "0003" + TOPICS + "00000002 0102" + OWNED + "00000005" + "0002 7231",
}


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_subscription_bytes(version):
    expected = h(SUBSCRIPTION_BYTES[version])
    assert cp.encode_subscription(SUB, version) == expected
    decoded = cp.decode_subscription(expected)
    assert decoded.version == version
    assert decoded.topics == ["a", "bc"] and decoded.user_data == b"\x01\x02"
    assert decoded.owned_partitions == (OWNED_PAIRS if version >= 1 else [])
    assert decoded.generation_id == (5 if version >= 2 else -1)
    assert decoded.rack_id == ("r1" if version >= 3 else None)
    assert cp.encode_subscription(decoded) == expected


def test_subscription_nulls_and_empties():
    sub = cp.Subscription([], None, [], -1, None)
    expected = h("0003 00000000 ffffffff 00000000 ffffffff ffff")
    assert cp.encode_subscription(sub) == expected
    assert cp.decode_subscription(expected) == sub
    assert cp.encode_subscription(cp.Subscription([], b""), 0) == h("0000 00000000 00000000")


def test_owned_partitions_are_grouped_by_topic_in_first_appearance_order():
    sub = cp.Subscription([], None, [("b", 1), ("a", 0), ("b", 0)], version=1)
    expected = h("0001 00000000 ffffffff 00000002"
                 "0001 62 00000002 00000001 00000000  0001 61 00000001 00000000")
    assert cp.encode_subscription(sub) == expected


def test_newer_subscription_version_is_read_with_the_v3_layout():
    data = h("0007" + SUBSCRIPTION_BYTES[3][4:] + "cafe")       # trailing future fields
    decoded = cp.decode_subscription(data)
    assert decoded.version == 7 and decoded.rack_id == "r1" and decoded.generation_id == 5
    assert cp.encode_subscription(decoded) == h(SUBSCRIPTION_BYTES[3])


def test_negative_versions_are_unsupported():
    with pytest.raises(UnsupportedVersion):
        cp.decode_subscription(h("ffff" + TOPICS + "ffffffff"))
    with pytest.raises(UnsupportedVersion):
        cp.decode_assignment(h("ffff 00000000 ffffffff"))


@pytest.mark.parametrize("data", [h("00"), h("0000 00000002 0001 61"), h("0000 ffffffff"),
                                  h("0001" + TOPICS + "ffffffff"), h("0000 7fffffff"),
                                  h("0000 00000001 0002 ff61 ffffffff"), None])
def test_malformed_subscriptions_raise_invalid_request(data):
    with pytest.raises(InvalidRequest):
        cp.decode_subscription(data)


ASSIGNED = "00000002 0001 61 00000002 00000000 00000001 0002 6263 00000001 00000002"


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_assignment_bytes(version):
    asg = cp.Assignment(OWNED_PAIRS, b"u")
    expected = h(f"000{version}" + ASSIGNED + "00000001 75")
    assert cp.encode_assignment(asg, version) == expected
    assert cp.decode_assignment(expected) == cp.Assignment(OWNED_PAIRS, b"u", version)


def test_assignment_with_null_user_data_and_no_partitions():
    assert cp.encode_assignment(cp.Assignment([], None)) == h("0003 00000000 ffffffff")
    assert cp.decode_assignment(h("0000 00000000 ffffffff")) == cp.Assignment([], None, 0)


def test_empty_assignment_bytes_mean_no_partitions():
    assert cp.decode_assignment(b"").partitions == []


def test_truncated_assignment_raises_invalid_request():
    with pytest.raises(InvalidRequest):
        cp.decode_assignment(h("0000" + ASSIGNED[:-8]))


# -- kafka-python as an independent encoder ------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
pairs = st.lists(st.tuples(names, st.integers(0, 2**31 - 1)), max_size=6)


def grouped(partitions):
    by_topic = {}
    for topic, p in partitions:
        by_topic.setdefault(topic, []).append(p)
    return list(by_topic.items())


def flat(partitions):
    """The order decoding gives back: grouped by topic in first-appearance order."""
    return [(t, p) for t, ps in grouped(partitions) for p in ps]


@given(version=st.integers(0, 3), topics=st.lists(names, max_size=5),
       user_data=st.none() | st.binary(max_size=8), owned=pairs,
       generation=st.integers(-2**31, 2**31 - 1), rack=st.none() | names)
def test_subscription_matches_kafka_python(version, topics, user_data, owned, generation, rack):
    ours = cp.encode_subscription(cp.Subscription(topics, user_data, owned, generation, rack),
                                  version)
    theirs = ConsumerProtocolSubscription(
        version=version, topics=topics, user_data=user_data, owned_partitions=grouped(owned),
        generation_id=generation, rack_id=rack).encode()
    assert ours == bytes(theirs)
    decoded = cp.decode_subscription(ours)
    assert decoded.topics == topics and decoded.user_data == user_data
    assert decoded.owned_partitions == (flat(owned) if version >= 1 else [])


@given(version=st.integers(0, 3), partitions=pairs, user_data=st.none() | st.binary(max_size=8))
def test_assignment_matches_kafka_python(version, partitions, user_data):
    ours = cp.encode_assignment(cp.Assignment(partitions, user_data), version)
    theirs = ConsumerProtocolAssignment(version=version, assigned_partitions=grouped(partitions),
                                        user_data=user_data).encode()
    assert ours == bytes(theirs)
    assert cp.decode_assignment(ours) == cp.Assignment(flat(partitions), user_data, version)
