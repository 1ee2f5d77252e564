"""Shared test set-up.

- Hypothesis profiles: "default" (quick) and "thorough" (HYPOTHESIS_PROFILE=thorough).
- `check_data_dirs` (autouse): after every test, each data directory the test wrote under its
  tmp_path (a store: has topics.json; or a partition: has .log files) is run through
  logstore.check, and any problem fails the test. Tests that corrupt data on purpose end by
  recovering it (that is what they test) or delete what they broke.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def data_dirs_under(root: str) -> list[str]:
    """Store directories and standalone partition directories below root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "topics.json" in filenames:
            found.append(dirpath)
            dirnames[:] = []          # the store check covers its partitions
        elif any(name.endswith(".log") for name in filenames):
            found.append(dirpath)
    return found


@pytest.fixture(autouse=True)
def check_data_dirs(request, tmp_path):
    yield
    from logstore import check

    problems = []
    for path in data_dirs_under(str(tmp_path)):
        problems += check.check(path)
    assert not problems, "checker found problems:\n" + "\n".join(map(str, problems))
