"""`logstore demo`: the registry of txn/demo.py and the order-service demo.

Goal: `logstore demo` (no name) runs the orders demo start to finish and narrates what it
checks (it exits 1 when something is not as it says); `logstore demo storage` and the other
names reach their modules' main(argv) with the rest of the command line; a demo whose module
is missing is a one-line error. Method: the real demo once through the console entry point
(logstore.cli.main), with its data kept under tmp_path so the autouse checker verifies the
directory the crash and restart left; the dispatch with fake demo modules.
"""

from __future__ import annotations

import sys
import textwrap

from logstore import cli
from txn import demo


def test_logstore_demo_without_a_name_runs_the_orders_demo(tmp_path, capsys):
    assert cli.main(["demo", "--dir", str(tmp_path), "--keep"]) == 0
    out = capsys.readouterr().out
    assert "== 1. an order service writes orders and payments in one transaction" in out
    assert "abort_transaction()" in out
    assert "commit_transaction() raises _FENCED (fatal=True)" in out
    assert "PRODUCER_FENCED" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("   orders-")}
    committed = {where: _committed_column(line) for where, line in rows.items()}
    assert rows["orders-0@4"].endswith("order 1004 golden-kettle 1999.00   <- aborted")
    assert committed["orders-0@4"] == "-"
    assert committed["orders-0@0"] == "order 1001 espresso-machine 249.00"
    assert "kill -9 the stage in the middle of its transaction" in out
    assert "resumed at offset 9, exactly the committed offset" in out
    assert "every order shipped exactly once" in out
    assert out.rstrip().endswith("done (data kept in "
                                 f"{tmp_path / 'orders-demo'}).")


def _committed_column(line: str) -> str:
    """The read_committed column of a side-by-side row (after the 14-column record name)."""
    start = len("   ") + 14
    return line[start:start + demo.COLUMN].strip()


def test_a_second_run_refuses_an_existing_data_directory(tmp_path, capsys):
    (tmp_path / "orders-demo").mkdir()
    assert demo.main(["orders", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_the_registry_names_each_demo_module():
    assert demo.DEFAULT_DEMO == "orders"
    assert {name: d.target for name, d in demo.DEMOS.items()} == {
        "orders": "txn.demo:orders_main",
        "storage": "logstore.demo:main",
        "halfmsg": "txn.demos.halfmsg:main",
        "outbox": "txn.demos.outbox:main",
        "idempotent-consumer": "txn.demos.idempotent_consumer:main",
    }


def test_names_dispatch_lazily_with_the_rest_of_the_line(tmp_path, monkeypatch):
    (tmp_path / "fake_demo_mod.py").write_text(textwrap.dedent("""
        CALLS = []
        def main(argv):
            CALLS.append(list(argv))
            return 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(demo.DEMOS, "fake", demo.Demo("fake_demo_mod:main", "a test"))
    monkeypatch.setitem(demo.DEMOS, "orders", demo.Demo("fake_demo_mod:main", "a test"))
    assert "fake_demo_mod" not in sys.modules
    assert cli.main(["demo", "fake", "--keep", "x"]) == 3
    assert cli.main(["demo", "--dir", "d"]) == 3              # no name: orders
    assert sys.modules["fake_demo_mod"].CALLS == [["--keep", "x"], ["--dir", "d"]]
    sys.modules.pop("fake_demo_mod", None)


def test_storage_reaches_the_storage_demo(monkeypatch):
    import logstore.demo
    calls = []
    monkeypatch.setattr(logstore.demo, "main", lambda argv: calls.append(argv) or 0)
    assert cli.main(["demo", "storage", "--keep"]) == 0
    assert calls == [["--keep"]]


def test_a_missing_demo_module_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(demo.DEMOS, "ghost", demo.Demo("txn.no_such_demos.ghost:main", "x"))
    assert demo.main(["ghost"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'ghost' demo is not available: module txn.no_such_demos.ghost" in err


def test_an_unknown_name_and_help(capsys):
    assert demo.main(["nonesuch"]) == 2
    assert "no demo named 'nonesuch'" in capsys.readouterr().err
    assert demo.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in demo.DEMOS:
        assert f"  {name} " in out
