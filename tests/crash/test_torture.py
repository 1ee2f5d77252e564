"""kill -9 torture, short: 20 SIGKILLs of the mixed transactional workload (scripts/torture.py;
`make torture` runs 100 or more).

Goal: after every kill the reopened directory is consistent and its history is clean: no lost
acknowledged write or committed transaction, no aborted or dirty read, no duplicate, exactly
once through the consume-transform-produce loop. Method: the script's parent loop, in this
process (children are real processes killed with SIGKILL at random moments, some during
start-up and recovery). A second test feeds hand-written journals to the same checks, so a
run that finds nothing is known to be able to find something.
"""

from __future__ import annotations

import importlib.util
import json
import os

TORTURE_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "torture.py")
KILLS = 20
SEED = 20


def load_torture():
    spec = importlib.util.spec_from_file_location("torture", TORTURE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_kills_leave_a_consistent_store_and_a_clean_history(tmp_path):
    torture = load_torture()
    rounds = []
    summary = torture.torture(str(tmp_path), KILLS, SEED, lambda *a: rounds.append(a))
    assert summary["anomalies"] == {}, json.dumps(summary["anomalies"], indent=1)[:4000]
    assert summary["kills"] == KILLS == len(rounds)
    assert summary["committed"] > 0 and summary["aborted"] > 0
    assert summary["records_checked"] > 0


def write_journal(path, events) -> None:
    with open(path, "w") as f:
        for event in events:
            f.write(json.dumps(event) + "\n")
        f.write('{"op":"send","p":"cut-by-the-kill"')           # a torn last line


def test_the_checks_find_lost_commits_aborted_reads_and_double_processing(tmp_path):
    torture = load_torture()
    journals = tmp_path / "journals"
    journals.mkdir()
    write_journal(journals / "journal-0.jsonl", [
        {"op": "begin", "x": "t1", "p": "txn"},
        {"op": "send", "p": "txn", "v": "committed", "t": "txn", "k": 0, "x": "t1"},
        {"op": "ack", "v": "committed", "o": 0, "k": 0},
        {"op": "commit", "x": "t1"}, {"op": "committed", "x": "t1"},
        {"op": "begin", "x": "t2", "p": "txn"},
        {"op": "send", "p": "txn", "v": "aborted", "t": "txn", "k": 0, "x": "t2"},
        {"op": "ack", "v": "aborted", "o": 1, "k": 0},
        {"op": "abort", "x": "t2"}, {"op": "aborted", "x": "t2"},
    ])
    reads = [("read_committed", [("txn", 0, 1, b"aborted"),
                                 ("plain", 0, 0, b"in-0"), ("plain", 0, 1, b"in-1"),
                                 ("out", 0, 0, b"eos|in-0|a"), ("out", 0, 1, b"eos|in-0|b")]),
             ("read_uncommitted", [])]
    history, events = torture.replay(str(journals), reads)
    assert events == 10
    result = history.check()
    assert "G1a" in result.anomalies
    assert torture.lost_acknowledged(history, reads) == ["b'committed' (txn-0@0)"]
    assert sorted(torture.exactly_once(reads, {0: 2})) == [
        "input b'in-0' transformed 2 times",
        "input b'in-1' (plain-0@1) is below the committed offset 2 but was never transformed"]
