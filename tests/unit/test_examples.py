"""The programs in examples/ run as a user runs them (`python examples/x.py DATA_DIR`) and
print what they promise.

Goal: every example a user may copy works end to end: exit status 0 and its key lines.
Method: each runs in its own interpreter on a data directory under tmp_path, which the autouse
checker then verifies (the examples close their clients, so the directory is clean).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
TIMEOUT_S = 180

EXPECTED = {
    "transactional_producer.py": [
        "  delivered to orders-0@0", "  delivered to payments-0@0",
        "committed order 1001 and its payment", "  not delivered: Local: Purged in queue",
        "aborted order 1002 (card declined)", "committed order 1003"],
    "read_committed_consumer.py": [
        "before the commit: ['committed']", "after the commit:  ['pending']"],
    "consume_process_produce.py": [
        "processed 95 orders in transactions of up to 10", "95 invoices, 95 distinct"],
    "zombie_fencing.py": [
        "B: init_transactions() fenced A", "A: commit_transaction() failed: _FENCED, fatal=True",
        "committed: charge 42 EUR (from B)"],
    "consumer_group.py": [       # which half each member gets depends on the member ids
        "first: assigned [0, 1, 2, 3]", ("second: assigned [0, 1]", "second: assigned [2, 3]"),
        ("first: assigned [2, 3]", "first: assigned [0, 1]"), "second: revoked [",
        "records: 40 received, 40 distinct"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_its_results(name, tmp_path):
    source = (EXAMPLES / name).read_text()
    assert source.startswith('"""') and f"python examples/{name} [DATA_DIR]" in source
    result = subprocess.run([sys.executable, str(EXAMPLES / name), str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in EXPECTED[name]:     # the start of a line, or a tuple of alternatives
        assert any(line.startswith(expected) for line in lines), (expected, result.stdout)
    assert (tmp_path / "data" / "topics.json").exists()


def test_an_example_without_a_directory_leaves_nothing_behind(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run([sys.executable, str(EXAMPLES / "zombie_fencing.py")],
                            capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path,
                            env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert "committed: charge 42 EUR (from B)" in result.stdout.splitlines()
    assert list(scratch.iterdir()) == []
