"""The storage demo runs start to finish (it asserts internally that recovery kept every
acknowledged record) and narrates each step."""

from __future__ import annotations

from logstore import demo


def test_storage_demo_runs_and_narrates(tmp_path, capsys):
    assert demo.main(["--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "every acknowledged record is there" in out
    assert "verify after recovery: 0 problem(s)" in out
    assert "isvalid: True" in out
