"""logstore's benchmark suite: `make bench` (or `logstore bench` from a source checkout).

Entry point bench/run.py; the shared interleaved timer is bench/_timer.py; sections are the
modules of bench/sections/; pytest-benchmark micro-benchmarks of the C calls are in bench/micro/
(not collected by `make test`)."""
