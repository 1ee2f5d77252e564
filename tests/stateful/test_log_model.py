"""A hypothesis state machine drives a real Log against a list model.

Rules: append (random records, codecs, sizes), read from a random offset, roll, truncate,
delete records, apply retention.bytes, clean close and reopen, and crash-and-reopen (files let
go with no flush, trim or marker: the state kill -9 leaves). Invariants after every step: the
offsets, log start/end offsets and every record read back equal the model's.
"""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from logstore import check
from logstore.log import Log

CONFIG = {"segment.bytes": 1500, "index.interval.bytes": 100, "segment.index.bytes": 96}

record_values = st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=12)


class LogMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="logstore-stateful-")
        self.path = f"{self.root}/model-0"
        self.log = Log.open(self.path, CONFIG)
        self.model: list[tuple[int, bytes]] = []   # (offset, value) of every live record
        self.end = 0
        self.start = 0

    def teardown(self):
        try:
            self.log.close()
            assert check.check(self.path) == []
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(values=record_values, codec=st.integers(0, 4))
    def append(self, values, codec):
        info = self.log.append(values, compression=codec)
        assert info.first_offset == self.end
        self.model += [(self.end + i, v) for i, v in enumerate(values)]
        self.end += len(values)

    @rule(data=st.data())
    def read_somewhere(self, data):
        offset = data.draw(st.integers(self.start, self.end))
        result = self.log.read(offset, max_bytes=data.draw(st.integers(1, 3000)))
        got = [(r.offset, r.value) for b in result.batches() for r in b.records()
               if r.offset >= self.start]       # a batch may straddle the log start offset
        if offset == self.end:
            assert got == []
            return
        assert got, "a read below the end returns at least one batch"
        first_batch_start = got[0][0]
        assert first_batch_start <= offset <= got[-1][0]
        expected = [(o, v) for o, v in self.model if first_batch_start <= o <= got[-1][0]]
        assert got == expected

    @rule()
    def roll(self):
        self.log.roll()

    @precondition(lambda self: self.end > self.start)
    @rule(data=st.data())
    def truncate(self, data):
        target = data.draw(st.integers(self.start + 1, self.end))
        new_end = self.log.truncate_to(target)
        assert new_end <= target
        self.model = [(o, v) for o, v in self.model if o < new_end]
        self.end = new_end
        self.start = min(self.start, new_end)    # Kafka lowers the log start to the new end

    @precondition(lambda self: self.end > self.start)
    @rule(data=st.data())
    def delete_records(self, data):
        target = data.draw(st.integers(self.start, self.end))
        self.start = self.log.delete_records_before(target)
        assert self.start == max(target, self.start)
        self.model = [(o, v) for o, v in self.model if o >= self.start]

    @rule()
    def clean_reopen(self):
        self.log.close()
        self.log = Log.open(self.path, CONFIG)
        assert self.log.recovery_report.segments_recovered == []

    @rule()
    def crash_and_reopen(self):
        self.log.abandon()
        self.log = Log.open(self.path, CONFIG)
        assert self.log.recovery_report.truncated_bytes == 0

    @invariant()
    def offsets_match(self):
        assert self.log.log_end_offset == self.end
        assert self.log.log_start_offset == self.start

    @invariant()
    def everything_reads_back(self):
        got = [(r.offset, r.value) for b in self.log.batches() for r in b.records()
               if r.offset >= self.start]
        assert got == self.model


LogMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLogMachine = LogMachine.TestCase
