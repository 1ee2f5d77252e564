"""The history checker reports each anomaly on a small hand-made history, and a clean
history passes."""

from __future__ import annotations

from txn.history import History

RC, RU = "read_committed", "read_uncommitted"


def committed_write(h, value, offset, partition=0, process="p"):
    t = h.begin(process)
    w = h.send(process, value, "t", partition, txn=t)
    h.send_ok(w, offset)
    h.commit_invoke(t)
    h.commit_ok(t)
    return w


def test_a_clean_history_is_valid():
    h = History()
    committed_write(h, b"a", 0)
    committed_write(h, b"b", 1)
    h.poll("c", RC, [("t", 0, 0, b"a"), ("t", 0, 1, b"b")])
    result = h.check()
    assert result.valid, str(result)
    assert result.counts["records_read"] == 2


def test_an_aborted_read_is_g1a():
    h = History()
    t = h.begin("p")
    w = h.send("p", b"x", "t", 0, txn=t)
    h.send_ok(w, 0)
    h.abort(t)
    h.poll("c", RC, [("t", 0, 0, b"x")])
    h.poll("u", RU, [("t", 0, 0, b"x")])           # read_uncommitted may see it
    result = h.check()
    assert list(result.anomalies) == ["G1a"] and len(result.anomalies["G1a"]) == 1


def test_reading_before_the_commit_is_invoked_is_a_dirty_read():
    h = History()
    t = h.begin("p")
    w = h.send("p", b"x", "t", 0, txn=t)
    h.send_ok(w, 0)
    h.poll("c", RC, [("t", 0, 0, b"x")])
    h.commit_invoke(t)
    h.commit_ok(t)
    assert "dirty-read" in h.check().anomalies


def test_a_committed_write_below_the_highest_read_offset_must_be_read():
    h = History()
    committed_write(h, b"a", 0)
    committed_write(h, b"b", 1)
    h.poll("c", RC, [("t", 0, 1, b"b")])
    result = h.check()
    assert "lost-write" in result.anomalies and "b'a'" in result.anomalies["lost-write"][0]


def test_duplicates_inconsistent_offsets_and_nonmonotonic_polls():
    h = History()
    committed_write(h, b"a", 0)
    committed_write(h, b"b", 1)
    h.poll("c", RC, [("t", 0, 0, b"a"), ("t", 0, 1, b"b")], session=1)
    h.poll("c", RC, [("t", 0, 0, b"a")], session=1)             # went backwards
    h.poll("d", RC, [("t", 0, 5, b"a")], session=2)             # the same value elsewhere
    h.poll("e", RC, [("t", 0, 1, b"zz")], session=3)            # another value at offset 1
    anomalies = h.check().anomalies
    assert {"duplicate", "inconsistent-offsets", "nonmonotonic-poll",
            "offset-mismatch"} <= set(anomalies)


def test_a_new_session_may_reread():
    h = History()
    committed_write(h, b"a", 0)
    h.poll("c", RC, [("t", 0, 0, b"a")], session=1)
    h.poll("c", RC, [("t", 0, 0, b"a")], session=2)             # after a rebalance
    assert h.check().valid
