"""The half-message, outbox and idempotent-consumer demos and examples run and say what they
promise.

Goal: `logstore demo halfmsg|outbox|idempotent-consumer` and the three examples work end to
end on a fresh directory: exit status 0 and their key lines (the demos check their own
narration and exit 1 when it is wrong).
Method: the demos run through the `logstore demo` dispatcher (txn.demo.main) in this process
with --keep, so the autouse checker verifies the stores they leave; the examples run in their
own interpreter as a user runs them (`python examples/x.py DATA_DIR`).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from txn import demo

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
TIMEOUT_S = 180

DEMO_LINES = {
    "halfmsg": [
        "   order 1001: half offset 0, gateway captured -> COMMIT_MESSAGE",
        "   order 1002: half offset 1, gateway declined -> ROLLBACK_MESSAGE",
        "   order 1003: half offset 2, gateway timeout  -> UNKNOW",
        "   read_committed  : orders [1001]",
        "   undecided half messages found in the log: orders [1003, 1004]",
        "   t+6.001s: check #1 of order 1003 -> UNKNOW",
        "   t+36.001s: check #2 of order 1003 -> COMMIT_MESSAGE",
        "   t+456.001s: order 1004 had no answer after 15 checks: moved to "
        "TRANS_CHECK_MAX_TIME_TOPIC",
        "   WARNING (txn.halfmsg_check): half message 3 (transaction ",
        "   payments (read_committed): orders [1001, 1003], each once"],
    "outbox": [
        "   killed at outbox.after_commit", "   killed at outbox.after_produce",
        "   killed at coordinator.after_prepare",
        "   committed in SQLite: 10 orders; rolled back: [1003, 1006, 1008]",
        "   read_committed: 10 records, 10 distinct orders",
        "   every committed order exactly once; no rolled-back order"],
    "idempotent-consumer": [
        "   committed offset: 3", "   offset 3: p4 carol 75: skipped (already processed)",
        "   offset 4: p3 alice 40: skipped (already processed)",
        "   offset 5: p5 bob 10: credited", "   alice 140, bob 260, carol 75"],
}

EXAMPLE_LINES = {
    "halfmsg_order_payment.py": [
        "order 1: COMMIT_MESSAGE", "order 2: ROLLBACK_MESSAGE", "order 3: UNKNOW",
        "payments visible to consumers: orders [1, 3]"],
    "outbox_relay.py": [
        "order 2 rolled back (golden kettle is out of stock)",
        "outbox rows not yet relayed: 0",
        'log: {"order": 1, "item": "espresso machine"} (outbox_id 1, type OrderPlaced)',
        'log: {"order": 3, "item": "grinder"} (outbox_id 2, type OrderPlaced)'],
    "idempotent_consumer.py": [
        "first pass: 3 credited, 1 skipped (the resent p3)",
        "after a seek back to offset 0: 0 credited, 4 skipped",
        "balances: {'alice': 140, 'bob': 250}"],
}


@pytest.mark.parametrize("name", sorted(DEMO_LINES))
def test_demo_runs_through_the_dispatcher(name, tmp_path, capsys):
    assert demo.main([name, "--dir", str(tmp_path), "--keep"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for expected in DEMO_LINES[name]:
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert lines[-1].startswith("done")


@pytest.mark.parametrize("name", sorted(EXAMPLE_LINES))
def test_example_runs_and_prints_its_results(name, tmp_path):
    source = (EXAMPLES / name).read_text()
    assert source.startswith('"""') and f"python examples/{name} [DATA_DIR]" in source
    result = subprocess.run([sys.executable, str(EXAMPLES / name), str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in EXAMPLE_LINES[name]:
        assert expected in lines, (expected, result.stdout)
    checks = [line for line in lines if line.startswith("check-back #")]
    if name == "halfmsg_order_payment.py":       # order 3 was settled by the check-back
        assert checks and checks[-1].endswith("order 3 -> COMMIT_MESSAGE"), result.stdout
    assert (tmp_path / "data" / "log" / "topics.json").exists()

