# logstore: every target sets itself up. `make demo` and `make test` work on a fresh machine with
# only Python 3.10+, gcc and pip: they create .venv, install the package in editable mode with its
# test and bench extras, and compile the C core (csrc/ -> logstore/_native*.so).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
NATIVE := logstore/.native-built
CSRC   := $(wildcard csrc/*.c csrc/*.h) csrc/build_ffi.py
PYTEST_ARGS ?=

.PHONY: venv native demo test test-asan bench bench-quick torture serve kcat clean distclean

# `make serve`: the Kafka wire-protocol server over DIR (override: make serve DIR=x PORT=9093).
DIR    ?= data
HOST   ?= 127.0.0.1
PORT   ?= 9092

venv: $(STAMP) $(NATIVE)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test,bench]'
	touch $@

# Rebuild the extension in place whenever a C source or the header changes (--force: an
# interrupted `make test-asan` may have left a sanitizer build newer than the sources).
$(NATIVE): $(STAMP) $(CSRC)
	$(PY) setup.py --quiet build_ext --inplace --force
	touch $@

native: $(NATIVE)

demo: venv
	$(VENV)/bin/logstore demo

test: venv kcat
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The wire tests drive kcat (Debian package `kcat`); install it when missing (CI runs as root).
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
	  echo "installing kcat (apt-get)"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q kcat; }

serve: venv
	$(VENV)/bin/logstore serve --dir $(DIR) --host $(HOST) --port $(PORT)

# The C core rebuilt with AddressSanitizer + UBSan, then the tests that drive it (the torture
# children inherit the preload). It rebuilds logstore/_native in place, so run it in a tree
# nobody else is testing in (a git worktree with its own venv). However the run ends (tests
# failing, a failed sanitizer build, Ctrl-C), the trap puts the normal build back; should even
# that be skipped (kill -9), the missing stamp makes the next build a forced one.
# Sanitizer reports go to files (pytest's capture of stderr would swallow the report of a
# process that dies), printed at the end; any report fails the target.
ASAN_TESTS ?= tests/unit tests/property tests/stateful tests/crash tests/fuzz tests/history
ASAN_REPORTS := $(CURDIR)/build/sanitizer-reports
test-asan: venv
	@restore() { echo "test-asan: restoring the normal build"; \
	  $(PY) setup.py --quiet build_ext --inplace --force && touch $(NATIVE); }; \
	trap 'status=$$?; restore || status=1; exit $$status' EXIT; trap 'exit 130' INT TERM; \
	rm -f $(NATIVE); rm -rf $(ASAN_REPORTS); mkdir -p $(ASAN_REPORTS); \
	LOGSTORE_SANITIZE=1 $(PY) setup.py --quiet build_ext --inplace --force || exit 1; \
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:log_path=$(ASAN_REPORTS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan PYTHONMALLOC=malloc \
	  $(PY) -m pytest -p no:xdist $(ASAN_TESTS) $(PYTEST_ARGS); status=$$?; \
	for report in $(ASAN_REPORTS)/*; do \
	  [ -e "$$report" ] && { echo "== $$report"; cat "$$report"; status=1; }; done; \
	exit $$status

# `make torture`: the kill -9 torture (scripts/torture.py): KILLS rounds of a mixed
# transactional workload killed with SIGKILL at a random moment, each followed by recovery, the
# checker and the history checks. The work directory is kept when something is found.
KILLS ?= 100
torture: venv
	@dir=$$(mktemp -d -t logstore-torture-XXXXXX); \
	  if $(PY) scripts/torture.py --kills $(KILLS) --dir $$dir; then rm -rf $$dir; \
	  else echo "torture found a problem; its data and journals are in $$dir"; exit 1; fi

bench: venv
	$(VENV)/bin/logstore bench

bench-quick: venv
	$(VENV)/bin/logstore bench --quick

clean:
	rm -rf build logstore/_native*.so logstore/_native.c logstore/_native.o $(NATIVE) .pytest_cache

distclean: clean
	rm -rf $(VENV)
