"""The layering of DESIGN.md, enforced like Kafka's import-control: logstore never imports txn or
wire, txn never imports wire, and only logstore/_ffi.py imports the compiled logstore._native."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = {"logstore": {"txn", "wire"}, "txn": {"wire"}, "wire": set()}


def imports_of(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_packages_only_import_downwards():
    violations = []
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in imports_of(path):
                if name.split(".")[0] in forbidden:
                    violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not violations, violations


def test_only_the_ffi_module_touches_the_native_extension():
    offenders = []
    for package in FORBIDDEN:
        for path in (ROOT / package).rglob("*.py"):
            if path.relative_to(ROOT).as_posix() == "logstore/_ffi.py":
                continue
            if any(n.startswith("logstore._native") for n in imports_of(path)):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_the_checker_itself_sees_a_violation(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from txn import coordinator\nimport wire.server\n")
    assert {"txn", "txn.coordinator", "wire.server"} <= imports_of(bad)
