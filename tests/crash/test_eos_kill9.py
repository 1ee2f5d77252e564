"""Exactly-once consume-process-produce under kill -9, again and again.

Goal: a worker that reads an input topic (group member, read_committed, manual offsets) and
writes one output record per input record with a transactional producer, committing output and
offsets together, produces each input's result exactly once and in order, however often it is
killed with SIGKILL: at start-up (during recovery or init_transactions), between transactions,
or in the middle of one (while producing, sending offsets or committing).

Method: the input topic's partitions are filled with unique values; a worker child process
maps input partition p to output partition p and writes `value + b"!"` in transactions of
random size. The parent kills it at random moments at least KILLS times, restarting it each
time, then lets a last worker finish the input. The worker prints every send, acknowledgement
and commit call; from those lines the parent builds a txn.history.History (each output record
carries its attempt, `<life>.<transaction>`, in a header, so every write in the history is
unique) and checks it together with what a read_committed reader sees: per output partition
exactly the input's values + b"!", in input order, and the group's offsets at the input's end.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass

from txn import AdminClient, Consumer, NewTopic, Producer, TopicPartition
from txn.history import History

from history_support import (CHILD_REPORT, READ_COMMITTED, child_environment, conf,
                             read_to_end, values_of)

PARTITIONS = 3
RECORDS_PER_PARTITION = 500        # more than 22 lives get through before their kills
KILLS = 22                          # at least 20 kills, a couple more for good measure
TXN_SIZE_MAX = 6                    # records per transaction: 1..this
COMMITS_BEFORE_KILL_MAX = 5         # a kill comes after 0..this commits of a worker's life
STARTUP_KILL_SHARE = 0.15           # this share of the kills lands during start-up
STARTUP_KILL_WINDOW_S = 0.8
KILL_JITTER_S = 0.02                # a kill planned at READY comes up to this much later
KILL_TXN_SHARE_MAX = 1.5            # ...one after a commit, up to this share of a transaction
LIFE_TIMEOUT_S = 60.0
STACKS_SHOWN = 6000                 # characters of a hung worker's stack dump in a failure
SEED = 20240917
GROUP = "eos-workers"
TXN_ID = "eos-worker"
ATTEMPT_HEADER = "attempt"

WORKER = CHILD_REPORT + textwrap.dedent("""
    import json, random, sys
    from txn import Consumer, Producer, TopicPartition
    data, settings = sys.argv[1], json.loads(sys.argv[2])
    rng = random.Random(settings["seed"])
    base = {"log.dirs": data, **settings["broker"]}

    def on_delivery(error, message):
        if error is None:
            report("ACK", dict(message.headers())["attempt"].decode(), message.value().decode(),
                message.offset())

    def finished(consumer):
        assigned = consumer.assignment()
        if len(assigned) < settings["partitions"]:
            return False
        committed = consumer.committed(assigned, 30)     # where a partition not read yet is
        for tp, start in zip(consumer.position(assigned), committed):
            offset = tp.offset if tp.offset >= 0 else start.offset
            if offset < consumer.get_watermark_offsets(tp)[1]:
                return False
        return True

    consumer = Consumer({**base, "group.id": settings["group"], "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    producer = Producer({**base, "transactional.id": settings["txn_id"],
                         "on_delivery": on_delivery})
    producer.init_transactions(30)
    consumer.subscribe(["in"])
    report("READY")
    number = 0
    while True:
        batch = [m for m in consumer.consume(rng.randint(1, settings["txn_size_max"]), 0.2)
                 if m.error() is None]
        if not batch:
            if finished(consumer):
                break
            continue
        attempt = f"{settings['life']}.{number}"
        producer.begin_transaction()
        for message in batch:
            report("SEND", attempt, message.value().decode(), message.partition())
            producer.produce("out", message.value() + b"!", partition=message.partition(),
                             headers=[("attempt", attempt.encode())])
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        report("COMMIT", attempt)
        producer.commit_transaction(30)
        report("COMMITTED", attempt)
        number += 1
    consumer.close()
    producer.close()
    report("DONE")
""")


@dataclass(frozen=True)
class KillPlan:
    """When to kill a worker. after_commits None: `delay_s` after it was started (start-up:
    recovery, init_transactions, joining the group). 0: `delay_s` after it said READY. n > 0:
    after its n-th commit, plus `txn_share` of the time its last transaction took, so that
    the kill lands somewhere in the next transaction however fast the machine is."""

    after_commits: int | None
    delay_s: float = 0.0
    txn_share: float = 0.0


def kill_plans(rng: random.Random) -> list[KillPlan]:
    plans = []
    for _ in range(KILLS):
        if rng.random() < STARTUP_KILL_SHARE:
            plans.append(KillPlan(None, delay_s=rng.uniform(0, STARTUP_KILL_WINDOW_S)))
        else:
            plans.append(KillPlan(rng.randint(0, COMMITS_BEFORE_KILL_MAX),
                                  delay_s=rng.uniform(0, KILL_JITTER_S),
                                  txn_share=rng.uniform(0, KILL_TXN_SHARE_MAX)))
    return plans


def input_value(partition: int, index: int) -> bytes:
    return f"p{partition}-{index:04d}".encode()


def fill_input(path) -> None:
    with AdminClient(conf(path)) as admin:
        for future in admin.create_topics([NewTopic("in", PARTITIONS),
                                           NewTopic("out", PARTITIONS)]).values():
            future.result(30)
    producer = Producer(conf(path))
    try:
        for partition in range(PARTITIONS):
            for index in range(RECORDS_PER_PARTITION):
                producer.produce("in", input_value(partition, index), partition=partition)
        assert producer.flush(30) == 0
    finally:
        producer.close()


class Worker:
    """One life of the worker: a child process and a thread feeding its lines to a queue."""

    def __init__(self, path, life: int, stderr_path):
        self.stderr_path = stderr_path
        settings = {"seed": SEED + life, "life": life, "group": GROUP, "txn_id": TXN_ID,
                    "partitions": PARTITIONS, "txn_size_max": TXN_SIZE_MAX,
                    "broker": {k: v for k, v in conf(path).items() if k != "log.dirs"}}
        self.stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-c", WORKER, str(path),
             json.dumps(settings)],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=child_environment())
        self.started = time.monotonic()
        self.ended = False                   # the end of its output was seen
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.split())
        self.lines.put(None)

    def next_line(self) -> list[str] | None:
        """The next line (None at EOF); fails the test if the worker hangs."""
        if self.ended:
            return None
        left = self.started + LIFE_TIMEOUT_S - time.monotonic()
        try:
            line = self.lines.get(timeout=max(left, 0.01))
            self.ended = line is None
            return line
        except queue.Empty:
            self.proc.send_signal(signal.SIGABRT)       # faulthandler: every thread's stack
            self.proc.wait(LIFE_TIMEOUT_S)
            self.stderr.close()
            with open(self.stderr_path) as f:
                stacks = f.read()[-STACKS_SHOWN:]
            raise AssertionError(f"the worker made no progress for {LIFE_TIMEOUT_S} s; its "
                                 f"threads:\n{stacks}") from None

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)

    def finish(self, events: list) -> int:
        """Collect the remaining lines into events; the exit status."""
        while (line := self.next_line()) is not None:
            events.append(line)
        status = self.proc.wait(LIFE_TIMEOUT_S)
        self.proc.stdout.close()
        self.stderr.close()
        return status


def live(worker: Worker, plan: KillPlan | None, events: list) -> bool:
    """Run one life to its kill (plan) or its end (no plan); True when it finished the input."""
    if plan is not None and plan.after_commits is None:
        time.sleep(plan.delay_s)
        worker.kill()
    else:
        commits, mark, txn_s = 0, time.monotonic(), 0.0
        while (line := worker.next_line()) is not None:
            events.append(line)
            if line[0] in ("READY", "COMMITTED"):
                commits += line[0] == "COMMITTED"
                txn_s, mark = time.monotonic() - mark, time.monotonic()
                if plan is not None and commits == plan.after_commits:
                    time.sleep(plan.txn_share * txn_s if commits else plan.delay_s)
                    worker.kill()
                    break
    status = worker.finish(events)
    if plan is None:
        assert status == 0 and events[-1] == ["DONE"], f"the last worker ended with {status}"
        return True
    assert status in (-signal.SIGKILL, 0), f"a worker ended with status {status}"
    return status == 0


def label(value: bytes, attempt: str) -> bytes:
    """A write's unique name in the history: the output value and its attempt."""
    return value + b"|" + attempt.encode()


def message_label(message) -> bytes:
    return label(message.value(), dict(message.headers())[ATTEMPT_HEADER].decode())


def history_of(events: list[list[str]]) -> History:
    """Sends acknowledged at their offsets; a transaction is committed when its commit
    returned, unknown when the worker died inside commit_transaction, aborted when it died
    before calling it (the next worker's init_transactions or the timeout aborts it)."""
    history = History()
    txns, writes = {}, {}
    for kind, *fields in events:
        if kind == "SEND":
            attempt, value, partition = fields[0], fields[1].encode() + b"!", int(fields[2])
            txn = txns.setdefault(attempt, history.begin(f"worker-{attempt.split('.')[0]}"))
            name = label(value, attempt)
            writes[name] = history.send(txn.process, name, "out", partition, txn=txn)
        elif kind == "ACK":
            history.send_ok(writes[label(fields[1].encode(), fields[0])], int(fields[2]))
        elif kind == "COMMIT":
            history.commit_invoke(txns[fields[0]])
        elif kind == "COMMITTED":
            history.commit_ok(txns[fields[0]])
    for txn in txns.values():
        if txn.commit_invoked_at is None:
            history.abort(txn)
        elif txn.outcome != "ok":
            history.txn_unknown(txn)
    return history


def run_workers(path, tmp_path) -> tuple[list, int]:
    """Kill workers by the plans, then let one finish; (every event, kills that landed)."""
    events: list[list[str]] = []
    kills = 0
    for life, plan in enumerate(kill_plans(random.Random(SEED)) + [None]):
        worker = Worker(path, life, tmp_path / f"worker-{life}.stderr")
        finished = live(worker, plan, events)
        kills += not finished
    return events, kills


def committed_offsets(path) -> list[int]:
    consumer = Consumer(conf(path, **{"group.id": GROUP, "enable.auto.commit": False}))
    try:
        found = consumer.committed([TopicPartition("in", p) for p in range(PARTITIONS)], 30)
        return [tp.offset for tp in found]
    finally:
        consumer.close()


def test_each_input_is_processed_exactly_once_across_kill_9(tmp_path):
    path = tmp_path / "data"
    fill_input(path)
    events, kills = run_workers(path, tmp_path)
    assert kills >= 20
    history = history_of(events)
    output = read_to_end(path, READ_COMMITTED, [("out", p) for p in range(PARTITIONS)],
                         history, "checker", label=message_label)
    for partition in range(PARTITIONS):
        values = [v.rpartition(b"|")[0] for t, p, o, v in sorted(output) if p == partition]
        assert values == [input_value(partition, i) + b"!"
                          for i in range(RECORDS_PER_PARTITION)], f"out-{partition}"
    assert committed_offsets(path) == [RECORDS_PER_PARTITION] * PARTITIONS
    result = history.check()
    assert result.valid, str(result)
    aborted = sum(1 for txn in history.txns if txn.outcome == "fail")
    assert aborted > 0 and len(values_of(output)) == PARTITIONS * RECORDS_PER_PARTITION
