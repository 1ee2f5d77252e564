"""`logstore demo idempotent-consumer`: redelivered messages are skipped.

  1. a payment service publishes payments to 'payments' with an at-least-once producer: one
     payment is sent twice (a retry after a lost acknowledgement), with the same payment_id;
  2. a ledger consumer credits accounts in its own SQLite database through
     IdempotentConsumer: each payment's credit and its id in `processed_ids` commit in one
     SQLite transaction. It runs in a child process that is killed with SIGKILL after its
     fourth SQLite commit, before that message's offset was committed to the log;
  3. a restarted consumer resumes at the committed offset: the fourth payment is delivered
     again and skipped, the resent payment is skipped, the rest are credited;
  4. the balances count every payment exactly once.

Thread-safety: a command-line program; single-threaded plus one child process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from txn.demos import TIMEOUT_S, conf, expect, parser, run_demo, say, step

TOPIC = "payments"
GROUP = "ledger"
ID_HEADER = "payment_id"
PAYMENTS = [("p1", "alice", 100), ("p2", "bob", 250), ("p3", "alice", 40),
            ("p4", "carol", 75), ("p3", "alice", 40), ("p5", "bob", 10)]
KILL_AFTER = 4                    # SQLite commits the first consumer makes before it dies


def publish(data: str) -> None:
    from txn import Producer
    step(1, "a payment service publishes payments (at least once)")
    with Producer(conf(data)) as producer:
        for payment_id, account, cents in PAYMENTS:
            producer.produce(TOPIC, str(cents), account, headers={ID_HEADER: payment_id})
        expect(producer.flush(TIMEOUT_S) == 0, "the payments were not delivered")
    say("   " + ", ".join(f"{p} {a} {c}" for p, a, c in PAYMENTS))
    say("   p3 was sent twice (a retry): same payment_id, two records in the log")


def open_ledger(data: str, db_path: str):
    """The ledger's Consumer, SQLite connection and IdempotentConsumer."""
    from txn import Consumer
    from txn.outbox import IdempotentConsumer, connect, header_id
    consumer = Consumer(conf(data, **{"group.id": GROUP, "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False,
                                      "enable.partition.eof": True}))
    consumer.subscribe([TOPIC])
    conn = connect(db_path)
    conn.execute("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, "
                 "cents INTEGER NOT NULL)")
    conn.commit()
    return consumer, conn, IdempotentConsumer(consumer, conn, id_of=header_id(ID_HEADER))


def credit(conn, message) -> None:
    conn.execute("INSERT INTO balances VALUES (?, ?) ON CONFLICT (account) DO UPDATE "
                 "SET cents = cents + excluded.cents",
                 (message.key().decode(), int(message.value())))


def consume_all(helper, report) -> None:
    """Process messages until the end of the topic; report(message, ran) for each."""
    from txn import KafkaError
    while True:
        message = helper.consumer.poll(TIMEOUT_S)
        expect(message is not None, "the consumer got nothing")
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                return
            raise RuntimeError(str(message.error()))
        report(message, helper.process(message, credit))


def worker(argv: list[str]) -> int:
    """The first ledger consumer (child process): process everything (or die trying)."""
    data, db_path = argv
    consumer, conn, helper = open_ledger(data, db_path)
    consume_all(helper, lambda message, ran: None)
    consumer.close()
    conn.close()
    return 0


def crash_first_consumer(work: str) -> None:
    step(2, "the ledger consumer credits accounts, and is killed with SIGKILL")
    env = dict(os.environ,
               LOGSTORE_FAILPOINTS=f"idempotent.after_local_commit=crash@{KILL_AFTER - 1}")
    done = subprocess.run([sys.executable, "-m", "txn.demos.idempotent_consumer",
                           os.path.join(work, "data"), os.path.join(work, "ledger.db")],
                          env=env, capture_output=True, text=True, timeout=10 * TIMEOUT_S)
    expect(done.returncode == -signal.SIGKILL, f"the consumer was not killed: {done.stderr}")
    say(f"   it processed {KILL_AFTER} payments (SQLite committed each with its payment_id)")
    say(f"   and died before committing the offset of the {KILL_AFTER}th one to the log")


def restart(work: str) -> None:
    from txn import TopicPartition
    step(3, "a new ledger consumer resumes at the committed offset")
    consumer, conn, helper = open_ledger(os.path.join(work, "data"),
                                         os.path.join(work, "ledger.db"))
    try:
        (committed,) = consumer.committed([TopicPartition(TOPIC, 0)], TIMEOUT_S)
        say(f"   committed offset: {committed.offset}")

        def report(message, ran):
            payment = dict(message.headers())[ID_HEADER].decode()
            verdict = "credited" if ran else "skipped (already processed)"
            say(f"   offset {message.offset()}: {payment} {message.key().decode()} "
                f"{int(message.value())}: {verdict}")

        consume_all(helper, report)
        expect(helper.skipped == 2 and helper.processed == len(PAYMENTS) - KILL_AFTER - 1,
               f"processed {helper.processed}, skipped {helper.skipped}")
        step(4, "balances")
        balances = dict(conn.execute("SELECT account, cents FROM balances ORDER BY account"))
        expected: dict[str, int] = {}
        for _payment, account, cents in dict((p[0], p) for p in PAYMENTS).values():
            expected[account] = expected.get(account, 0) + cents
        say("   " + ", ".join(f"{a} {c}" for a, c in balances.items()))
        expect(balances == expected, f"balances {balances}, expected {expected}")
        say("   every payment credited exactly once")
    finally:
        consumer.close()
        conn.close()


def run(work: str) -> None:
    publish(os.path.join(work, "data"))
    crash_first_consumer(work)
    restart(work)


def main(argv: list[str] | None = None) -> int:
    args = parser("idempotent-consumer", "An idempotent consumer: processed ids in the "
                  "consumer's own SQLite transaction, so redeliveries are skipped."
                  ).parse_args(argv)
    return run_demo("idempotent-consumer", args, run)


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
