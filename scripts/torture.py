"""kill -9 torture: a mixed transactional workload killed with SIGKILL at random moments.

    python scripts/torture.py --kills 100 --dir /tmp/torture [--seed 1] [--json]

Each round starts a child process (this script with --child) on the data directory. The child
opens the embedded engine and runs, in threads, until it is killed:

  - an idempotent producer writing unique values to `plain` (acks=all);
  - a transactional producer writing to `txn`, committing or aborting at random;
  - two consume-transform-produce workers in group `eos` (read_committed on `plain`, output
    to `out`, the consumer offsets sent in the transaction: Kafka's exactly-once loop), whose
    joins and leaves rebalance the group;
  - two consumers (read_committed and read_uncommitted) reading all three topics.

Every operation is written to a journal (`journal-<round>.jsonl`, one line per event in the
order they happened, one write() each, so a kill loses at most the event in flight): sends,
their acknowledgements, begin / commit / abort invocations and returns, and every record a
poll returned. The parent kills the child after a random delay (sometimes while it is still
starting up and recovering), then reopens the directory itself: it fences the transactional
ids (finishing any transaction the kill left open), reads every partition in both isolation
levels, closes the engine, and checks:

  - logstore.check: the directory is consistent;
  - txn.history over every journal and the final reads: no aborted read (G1a), no read of a
    transaction before its commit (dirty-read), no duplicate, no offset mismatch, no lost
    write below the highest offset read, monotonic polls within a session;
  - nothing acknowledged is lost: every acknowledged send outside a transaction and every
    send of a transaction whose commit returned is in the final read_committed read;
  - exactly once: no input of `plain` is transformed twice in committed output, and every
    input below the group's committed offset is transformed once.

Exit status 0 when every round is clean; 1 with the anomalies otherwise. The summary gives the
kills survived, operations and records checked and anomalies found.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

TOPICS = {"plain": 2, "txn": 3, "out": 2}
TXN_ID = "torture-txn"
EOS_GROUP = "eos"
EOS_WORKERS = 2
READER_GROUPS = {"read_committed": "readers-rc", "read_uncommitted": "readers-ru"}
FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1,
               "broker.transaction.abort.timed.out.transaction.cleanup.interval.ms": 500}
KILL_DELAY_MAX_S = 1.5            # after the child says it is running
EARLY_KILL_FRACTION = 0.15        # kills at a random moment of start-up and recovery
EARLY_KILL_MAX_S = 2.0
READY_TIMEOUT_S = 120.0
CHILD_LIFETIME_MAX_S = 300.0      # a child nobody kills ends itself
CALL_TIMEOUT_S = 10.0
PRODUCE_BURST = 5
PRODUCE_PAUSE_S = 0.01
TXN_RECORDS_MAX = 5
TXN_ABORT_FRACTION = 0.25
EOS_ABORT_FRACTION = 0.1
EOS_BATCH_MAX = 20
POLL_TIMEOUT_S = 0.1
READER_COMMIT_INTERVAL_MS = 100   # a killed reader resumes near where it was, not at 0
READY_LINE = "running"


def _conf(data: str, **extra) -> dict:
    return {"log.dirs": data, **FAST_BROKER, **extra}


# ------------------------------------------------------------------------------------------------
# The child: the workload


class Journal:
    """Append-only JSON lines, one write() per event under a lock, so lines never interleave and
    a SIGKILL cuts at most the last line."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def write(self, **event) -> None:
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)


class Workload:
    def __init__(self, data: str, round_no: int, journal: Journal, seed: float):
        self.data = data
        self.round = round_no
        self.journal = journal
        self.seed = seed

    def value(self, process: str, n: int) -> str:
        return f"r{self.round}-{process}-{n}"

    def send(self, producer, process: str, value: str, topic: str, partition: int,
             txn: str | None = None) -> None:
        journal = self.journal

        def delivered(err, msg):
            if err is None:
                journal.write(op="ack", v=value, o=msg.offset(), k=msg.partition())
            else:
                journal.write(op="nack", v=value)
        journal.write(op="send", p=process, v=value, t=topic, k=partition, x=txn)
        producer.produce(topic, value=value.encode(), partition=partition,
                         on_delivery=delivered)

    def idempotent(self) -> None:
        from txn import Producer
        producer = Producer(_conf(self.data, **{"enable.idempotence": True}))
        rng = random.Random(self.seed)
        for n in range(sys.maxsize):
            self.send(producer, "idem", self.value("idem", n), "plain",
                      rng.randrange(TOPICS["plain"]))
            if n % PRODUCE_BURST == PRODUCE_BURST - 1:
                producer.poll(0)
                time.sleep(PRODUCE_PAUSE_S)

    def transactions(self) -> None:
        from txn import Producer
        producer = Producer(_conf(self.data, **{"transactional.id": TXN_ID}))
        producer.init_transactions(CALL_TIMEOUT_S)
        rng = random.Random(self.seed + 1)
        for n in range(sys.maxsize):
            key = f"r{self.round}-txn-{n}"
            self.journal.write(op="begin", x=key, p="txn")
            producer.begin_transaction()
            for i in range(rng.randint(1, TXN_RECORDS_MAX)):
                self.send(producer, "txn", f"{key}-{i}", "txn", rng.randrange(TOPICS["txn"]),
                          key)
            self.end_transaction(producer, key, rng.random() < TXN_ABORT_FRACTION)

    def end_transaction(self, producer, key: str, abort: bool) -> bool:
        """Commit the open transaction, or abort it when `abort` or when the commit fails,
        journaling each call and its return; True when it committed."""
        from txn import KafkaException
        try:
            if abort:
                raise _Abort()
            self.journal.write(op="commit", x=key)
            producer.commit_transaction(CALL_TIMEOUT_S)
            self.journal.write(op="committed", x=key)
            return True
        except (_Abort, KafkaException):
            self.journal.write(op="abort", x=key)
            producer.abort_transaction(CALL_TIMEOUT_S)
            self.journal.write(op="aborted", x=key)
            return False

    def eos_worker(self, worker: int) -> None:
        """Consume `plain`, produce to `out` and commit the offsets in the same transaction;
        after an abort, go back to the committed offsets (nothing is skipped)."""
        from txn import Consumer, KafkaException, Producer
        process = f"eos{worker}"
        producer = Producer(_conf(self.data, **{"transactional.id": f"torture-eos-{worker}"}))
        producer.init_transactions(CALL_TIMEOUT_S)
        consumer = Consumer(_conf(self.data, **{
            "group.id": EOS_GROUP, "isolation.level": "read_committed",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
        session = self.session_counter(process, consumer, ["plain"])
        rng = random.Random(self.seed + 10 + worker)
        for n in range(sys.maxsize):
            before = session()
            messages = [m for m in consumer.consume(EOS_BATCH_MAX, POLL_TIMEOUT_S)
                        if m.error() is None]
            if not messages:
                continue
            if session() != before:
                # The group rebalanced during the call. The embedded consumer's consume() may
                # then return records fetched before the positions went back to the committed
                # offsets together with the same records fetched again after (librdkafka
                # drops the outdated ones). Start over from the committed offsets, as the
                # transactional loop does on a revocation; the readers skip such a batch.
                self.rewind(consumer, session)
                continue
            self.journal_poll(process, "read_committed", session(), messages)
            key = f"r{self.round}-{process}-{n}"
            self.journal.write(op="begin", x=key, p=process)
            producer.begin_transaction()
            for m in messages:
                out = f"eos|{m.value().decode()}|{key}"
                self.send(producer, process, out, "out", m.partition(), key)
            try:
                producer.send_offsets_to_transaction(
                    consumer.position(consumer.assignment()),
                    consumer.consumer_group_metadata(), CALL_TIMEOUT_S)
                abort = rng.random() < EOS_ABORT_FRACTION
            except KafkaException:
                abort = True
            if not self.end_transaction(producer, key, abort):
                self.rewind(consumer, session)

    @staticmethod
    def rewind(consumer, session) -> None:
        """Back to the committed offsets (the start when none): a new read session."""
        from txn import TopicPartition
        for tp in consumer.committed(consumer.assignment(), CALL_TIMEOUT_S):
            consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))
        session(new=True)

    def reader(self, isolation: str) -> None:
        from txn import Consumer
        process = f"reader-{isolation}"
        consumer = Consumer(_conf(self.data, **{
            "group.id": READER_GROUPS[isolation], "isolation.level": isolation,
            "auto.offset.reset": "earliest",
            "auto.commit.interval.ms": READER_COMMIT_INTERVAL_MS}))
        session = self.session_counter(process, consumer, list(TOPICS))
        while True:
            before = session()
            messages = [m for m in consumer.consume(EOS_BATCH_MAX, POLL_TIMEOUT_S)
                        if m.error() is None]
            if messages and session() == before:   # a batch across a rebalance: see below
                self.journal_poll(process, isolation, session(), messages)

    def session_counter(self, process: str, consumer, topics: list[str]):
        """Subscribe; each assignment starts a new read session (positions may go back)."""
        count = [0]

        def session(new: bool = False) -> str:
            count[0] += new
            return f"r{self.round}-{process}-{count[0]}"
        consumer.subscribe(topics, on_assign=lambda c, parts: session(new=True))
        return session

    def journal_poll(self, process: str, isolation: str, session: str, messages) -> None:
        records = [[m.topic(), m.partition(), m.offset(), m.value().decode()]
                   for m in messages]
        self.journal.write(op="poll", p=process, i=isolation, s=session, r=records)


class _Abort(Exception):
    """The workload chose to abort this transaction."""


def run_child(data: str, round_no: int, journals: str, seed: float) -> None:
    """Open the engine, start every worker, say so, and run until killed."""
    from txn import AdminClient, NewTopic
    journal = Journal(os.path.join(journals, f"journal-{round_no}.jsonl"))
    admin = AdminClient(_conf(data))           # kept open: it holds the engine for the others
    futures = admin.create_topics([NewTopic(t, n) for t, n in TOPICS.items()])
    for future in futures.values():
        try:
            future.result()
        except Exception:  # noqa: BLE001 - the topic exists from an earlier round
            pass
    workload = Workload(data, round_no, journal, seed)
    targets = [workload.idempotent, workload.transactions, workload.reader,
               workload.reader] + [workload.eos_worker] * EOS_WORKERS
    args = [(), (), ("read_committed",), ("read_uncommitted",)] + \
        [(i,) for i in range(EOS_WORKERS)]
    for target, arg in zip(targets, args):
        threading.Thread(target=_logged(target), args=arg, daemon=True).start()
    print(READY_LINE, flush=True)
    time.sleep(CHILD_LIFETIME_MAX_S)


def _logged(target):
    def run(*args):
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - a worker's end is worth a line
            print(f"worker {target.__name__}{args} stopped: {exc!r}", file=sys.stderr,
                  flush=True)
    return run


# ------------------------------------------------------------------------------------------------
# The parent: kill, reopen, check


def kill_one(work: str, round_no: int, rng: random.Random) -> str:
    """Start round `round_no`'s child and SIGKILL it at a random moment; returns when."""
    data, journals = os.path.join(work, "data"), os.path.join(work, "journals")
    command = [sys.executable, os.path.abspath(__file__), "--child", "--dir", data,
               "--journals", journals, "--round", str(round_no), "--seed", str(rng.random())]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        if rng.random() < EARLY_KILL_FRACTION:
            time.sleep(rng.uniform(0, EARLY_KILL_MAX_S))
            moment = "during start-up"
        else:
            line = _read_line(child, READY_TIMEOUT_S)
            if line.strip() != READY_LINE:
                raise RuntimeError(f"round {round_no}: the child never ran (said {line!r})")
            time.sleep(rng.uniform(0, KILL_DELAY_MAX_S))
            moment = "while running"
        if child.poll() is not None:
            raise RuntimeError(f"round {round_no}: the child exited on its own "
                               f"(status {child.returncode}) before the kill")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
        child.stdout.close()
    return moment


def _read_line(child: subprocess.Popen, timeout_s: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(child.stdout.readline()),
                              daemon=True)
    reader.start()
    reader.join(timeout_s)
    return found[0] if found else ""


def final_reads(data: str) -> tuple[list, dict[int, int]]:
    """Reopen (recovery), fence every transactional id (a transaction the kill left open is
    finished), read every partition in both isolation levels to its end, and close cleanly.
    Returns ([(isolation, records)], {plain partition: committed offset of the eos group})."""
    from txn import Consumer, Producer, TopicPartition
    from txn.broker import Broker
    engine = Broker.open(data, {k[len("broker."):]: v for k, v in FAST_BROKER.items()})
    try:
        return _fence_and_read(data, Consumer, Producer, TopicPartition)
    finally:
        engine.release()          # the clients shared it: one recovery, one clean close


def _fence_and_read(data: str, Consumer, Producer, TopicPartition):
    for txn_id in [TXN_ID] + [f"torture-eos-{w}" for w in range(EOS_WORKERS)]:
        producer = Producer(_conf(data, **{"transactional.id": txn_id}))
        producer.init_transactions(CALL_TIMEOUT_S)
        producer.close()
    reads = []
    parts = [TopicPartition(t, p, 0) for t, n in TOPICS.items() for p in range(n)]
    for isolation in READER_GROUPS:
        consumer = Consumer(_conf(data, **{
            "group.id": EOS_GROUP, "isolation.level": isolation, "enable.auto.commit": False,
            "enable.partition.eof": True}))
        consumer.assign(parts)
        reads.append((isolation, _drain(consumer, len(parts))))
        committed = consumer.committed([TopicPartition("plain", p)
                                        for p in range(TOPICS["plain"])], CALL_TIMEOUT_S)
        consumer.close()
    return reads, {tp.partition: tp.offset for tp in committed}


def _drain(consumer, partitions: int) -> list:
    from txn import KafkaError
    records, at_end = [], set()
    while len(at_end) < partitions:
        message = consumer.poll(CALL_TIMEOUT_S)
        if message is None:
            raise RuntimeError("a partition never reached its end")
        if message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"final read: {message.error()}")
            at_end.add((message.topic(), message.partition()))
            continue
        records.append((message.topic(), message.partition(), message.offset(),
                        message.value()))
    return records


def _round_of(journal_name: str) -> int:
    """journal-12.jsonl -> 12."""
    return int(journal_name[len("journal-"):-len(".jsonl")])


def replay(journals: str, reads: list):
    """A txn.history.History of every journal line, in order, then the final reads."""
    from txn.history import History
    history = History()
    writes, txns = {}, {}
    events = 0
    for name in sorted(os.listdir(journals), key=_round_of):
        with open(os.path.join(journals, name), "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break                     # the line the kill cut short
                _apply(history, writes, txns, json.loads(line))
                events += 1
    for isolation, records in reads:
        history.poll(f"final-{isolation}", isolation,
                     [(t, p, o, v) for t, p, o, v in records], session=f"final-{isolation}")
    return history, events


def _apply(history, writes: dict, txns: dict, event: dict) -> None:
    op = event["op"]
    if op == "send":
        write = history.send(event["p"], event["v"].encode(), event["t"], event["k"],
                             txn=txns.get(event["x"]))
        writes[event["v"]] = write
    elif op == "ack":
        history.send_ok(writes[event["v"]], event["o"], event["k"])
    elif op == "nack":
        history.send_unknown(writes[event["v"]])   # a failed delivery may still have landed
    elif op == "begin":
        txns[event["x"]] = history.begin(event["p"])
    elif op == "commit":
        history.commit_invoke(txns[event["x"]])
    elif op == "committed":
        history.commit_ok(txns[event["x"]])
    elif op == "aborted":
        history.abort(txns[event["x"]])
    elif op == "poll":
        history.poll(event["p"], event["i"],
                     [(t, k, o, v.encode()) for t, k, o, v in event["r"]], session=event["s"])


def lost_acknowledged(history, reads: list) -> list[str]:
    """Acknowledged sends outside transactions, and sends of transactions whose commit
    returned, missing from the final read_committed read."""
    from txn.history import OK
    committed_read = {v for isolation, records in reads if isolation == "read_committed"
                      for (_t, _p, _o, v) in records}
    return [f"{w.value!r} ({w.topic}-{w.partition}@{w.offset})" for w in history.writes
            if w.outcome == OK and (w.txn is None or w.txn.outcome == OK)
            and w.value not in committed_read]


def exactly_once(reads: list, committed: dict[int, int]) -> list[str]:
    """Each input of `plain` transformed at most once in committed output, and every input
    below the eos group's committed offset transformed exactly once."""
    committed_records = dict(reads)["read_committed"]
    inputs = {(p, o): v for t, p, o, v in committed_records if t == "plain"}
    transformed: dict[bytes, int] = {}
    for t, _p, _o, v in committed_records:
        if t == "out":
            source = v.split(b"|")[1]
            transformed[source] = transformed.get(source, 0) + 1
    problems = [f"input {v!r} transformed {n} times" for v, n in transformed.items() if n > 1]
    for (partition, offset), v in inputs.items():
        if offset < committed.get(partition, -1) and v not in transformed:
            problems.append(f"input {v!r} (plain-{partition}@{offset}) is below the committed "
                            f"offset {committed[partition]} but was never transformed")
    return problems


def check_round(work: str) -> dict:
    """Reopen, read back and check everything; the round's figures and anomalies."""
    from logstore import check
    data, journals = os.path.join(work, "data"), os.path.join(work, "journals")
    reads, committed = final_reads(data)
    problems = [str(p) for p in check.check(data)]
    history, events = replay(journals, reads)
    result = history.check()
    anomalies = {name: examples for name, examples in result.anomalies.items()}
    lost = lost_acknowledged(history, reads)
    if lost:
        anomalies["lost-acknowledged"] = lost
    eos = exactly_once(reads, committed)
    if eos:
        anomalies["exactly-once"] = eos
    if problems:
        anomalies["checker"] = problems
    return {"events": events, "records_read": sum(len(r) for _, r in reads),
            "writes": len(history.writes), "txns": len(history.txns),
            "committed": sum(t.outcome == "ok" for t in history.txns),
            "aborted": sum(t.outcome == "fail" for t in history.txns),
            "history_records_read": result.counts["records_read"], "anomalies": anomalies}


def torture(work: str, kills: int, seed: int, report) -> dict:
    """`kills` rounds of start, SIGKILL, reopen and check; stops at the first anomaly."""
    rng = random.Random(seed)
    journals = os.path.join(work, "journals")
    os.makedirs(journals, exist_ok=True)
    first = 1 + max((_round_of(name) for name in os.listdir(journals)), default=-1)
    summary = {"kills": 0, "kills_during_startup": 0, "records_checked": 0, "anomalies": {}}
    for round_no in range(first, first + kills):
        moment = kill_one(work, round_no, rng)
        figures = check_round(work)
        summary["kills"] += 1
        summary["kills_during_startup"] += moment == "during start-up"
        summary["records_checked"] += figures["records_read"]
        summary.update({k: v for k, v in figures.items() if k != "anomalies"})
        report(round_no, moment, figures)
        if figures["anomalies"]:
            summary["anomalies"] = figures["anomalies"]
            break
    return summary


def _print_round(round_no: int, moment: str, figures: dict) -> None:
    found = sum(len(v) for v in figures["anomalies"].values())
    print(f"kill {round_no + 1}: {moment}; {figures['writes']} writes, {figures['txns']} "
          f"transactions ({figures['committed']} committed, {figures['aborted']} aborted), "
          f"{figures['records_read']} records read back, {found} anomalies", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--dir", required=True, help="work directory (data/ and journals/)")
    parser.add_argument("--seed", default="1")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--journals", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        os.makedirs(args.journals, exist_ok=True)
        run_child(args.dir, args.round, args.journals, float(args.seed))
        return 0
    quiet = args.json
    summary = torture(args.dir, args.kills, int(args.seed),
                      (lambda *a: None) if quiet else _print_round)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        found = sum(len(v) for v in summary["anomalies"].values())
        print(f"{summary['kills']} kills survived ({summary['kills_during_startup']} during "
              f"start-up); {summary['records_checked']} records read back and checked over "
              f"the rounds; the last check: {summary.get('events', 0)} journal events, "
              f"{summary.get('writes', 0)} writes, {summary.get('txns', 0)} transactions "
              f"({summary.get('committed', 0)} committed, {summary.get('aborted', 0)} "
              f"aborted), {summary.get('history_records_read', 0)} records read in polls; "
              f"{found} anomalies")
        for name, examples in summary["anomalies"].items():
            print(f"  {name}: " + "\n    ".join(map(str, examples[:10])))
    return 1 if summary["anomalies"] else 0


if __name__ == "__main__":
    sys.exit(main())
