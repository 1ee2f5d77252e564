"""`logstore demo halfmsg`: RocketMQ-style half messages in an order/payment flow.

A payment service charges cards. Each payment message goes out with
send_message_in_transaction: the half message is stored (fsynced) where no consumer looks, the
local transaction (the charge, recorded in SQLite) runs, and its answer decides:

  1. order 1001: the card is charged: COMMIT_MESSAGE, the payment appears on 'payments';
     order 1002: the card is declined: ROLLBACK_MESSAGE, only an op record is written;
     order 1003: the gateway times out: UNKNOW, the message waits for the check-back;
     order 1004: the gateway never answers: UNKNOW;
  2. a consumer of 'payments' sees order 1001 only, whatever its isolation level;
  3. the service restarts; the undecided messages are found again in the log;
  4. the check-back (RocketMQ's defaults: first check after 6 s, then every 30 s, 15 checks)
     on a simulated clock: 1003 is still pending at the first check, the gateway's callback
     arrives, the second check commits it; 1004 never gets an answer and after 15 checks
     goes to TRANS_CHECK_MAX_TIME_TOPIC with a warning;
  5. the log: each committed payment once, every message ended by exactly one op record.

Thread-safety: a command-line program; single-threaded (the check-back is driven by run_once;
in a service the TransactionProducer's own thread does the same every check interval).
"""

from __future__ import annotations

import os
import sqlite3

from txn.demos import (expect, header, parser, printed_warnings, read_topic, run_demo, say,
                       step)
from txn.demos import conf as demo_conf
from txn.halfmsg import (CHECK_MAX_TIME_TOPIC, HALF_TOPIC, OP_HALF_TOPIC, PROPERTY_OP_TYPE,
                         PROPERTY_TRANSACTION_CHECK_TIMES, TRANSACTION_CHECK_INTERVAL_MS,
                         TRANSACTION_CHECK_MAX, TRANSACTION_TIMEOUT_MS, LocalTransactionState,
                         TransactionMessage, TransactionProducer, decode_op_body)

GROUP = "payment-service"
TOPIC = "payments"
START_MS = 1_767_225_600_000             # the simulated clock starts at 2026-01-01 00:00 UTC
# What the card gateway answers during the local transaction, per order.
GATEWAY = {1001: "captured", 1002: "declined", 1003: "timeout", 1004: "silent"}
AMOUNTS = {1001: "249.00", 1002: "89.50", 1003: "12.90", 1004: "1999.00"}
STATES = {"captured": LocalTransactionState.COMMIT_MESSAGE,
          "declined": LocalTransactionState.ROLLBACK_MESSAGE}


class Clock:
    """The simulated clock (milliseconds) that the producer stamps half messages with."""

    def __init__(self, now_ms: int):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def label(self) -> str:
        return f"t+{(self.now_ms - START_MS) / 1000:.3f}s"


class PaymentService:
    """The local transactions: a charge recorded in SQLite (status captured, declined or
    pending), and the check that reads it back."""

    def __init__(self, db_path: str):
        self.conn = sqlite3.connect(db_path)
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS charges (order_id INTEGER PRIMARY KEY, "
                          "amount TEXT, status TEXT)")
        self.conn.commit()
        self.checks: list[tuple[int, int, str]] = []

    def execute_local_transaction(self, message, order_id):
        answer = GATEWAY[order_id]
        status = answer if answer in STATES else "pending"
        with self.conn:
            self.conn.execute("INSERT INTO charges VALUES (?, ?, ?)",
                              (order_id, AMOUNTS[order_id], status))
        return STATES.get(status, LocalTransactionState.UNKNOW)

    def check_local_transaction(self, message):
        order_id = int(message.key)
        (status,) = self.conn.execute("SELECT status FROM charges WHERE order_id = ?",
                                      (order_id,)).fetchone()
        state = STATES.get(status, LocalTransactionState.UNKNOW)
        self.checks.append((order_id, message.check_times, state.name))
        return state

    def gateway_callback(self, order_id: int, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE charges SET status = ? WHERE order_id = ?",
                              (status, order_id))


def open_producer(data: str, service: PaymentService, clock: Clock) -> TransactionProducer:
    return TransactionProducer(demo_conf(data), GROUP, service, clock=clock,
                               start_check_service=False)


def send_payments(producer: TransactionProducer) -> dict:
    step(1, "the payment service sends each payment as a half message")
    say(f"   producer group '{GROUP}'; each half message is written to {HALF_TOPIC}")
    say("   and fsynced before the local transaction (the card charge, in SQLite) runs")
    results = {}
    for order_id in GATEWAY:
        result = producer.send_message_in_transaction(TransactionMessage(
            TOPIC, f"payment {order_id} {AMOUNTS[order_id]}", key=str(order_id)), order_id)
        results[order_id] = result
        where = {LocalTransactionState.COMMIT_MESSAGE:
                 f"visible at {TOPIC}-{result.partition}@{result.offset}",
                 LocalTransactionState.ROLLBACK_MESSAGE: "discarded: one op record",
                 LocalTransactionState.UNKNOW: "left for the check-back"}
        say(f"   order {order_id}: half offset {result.half_offset}, gateway "
            f"{GATEWAY[order_id]:<8} -> {result.local_transaction_state.name:<16} "
            f"{where[result.local_transaction_state]}")
    expect(results[1001].offset is not None, "order 1001 was not committed")
    return results


def show_consumers(data: str) -> None:
    step(2, f"what a consumer of '{TOPIC}' sees")
    for isolation in ("read_committed", "read_uncommitted"):
        orders = [int(m.key()) for m in read_topic(data, TOPIC, isolation)]
        say(f"   {isolation:<16}: orders {orders}")
        expect(orders == [1001], f"a {isolation} consumer saw {orders}")
    say("   half messages live in their own topic: no isolation level shows them")


def check_back(producer: TransactionProducer, service: PaymentService, clock: Clock) -> None:
    step(4, "the check-back, on a simulated clock")
    check = producer.check_service
    say(f"   RocketMQ's defaults: first check once older than {TRANSACTION_TIMEOUT_MS} ms, "
        f"then every {TRANSACTION_CHECK_INTERVAL_MS} ms, at most {TRANSACTION_CHECK_MAX}")
    clock.now_ms = START_MS + TRANSACTION_TIMEOUT_MS
    expect(check.run_once().checked == [], "a check came before the timeout")
    say(f"   {clock.label()}: nothing is checked yet (not older than the timeout)")
    clock.now_ms += 1
    report_round(check.run_once(), clock)
    service.gateway_callback(1003, "captured")
    say("   the gateway's callback arrives: order 1003 was captured after all")
    clock.now_ms += TRANSACTION_CHECK_INTERVAL_MS
    report_round(check.run_once(), clock)
    quiet = 0
    with printed_warnings("txn.halfmsg_check"):
        while check.pending():
            clock.now_ms += TRANSACTION_CHECK_INTERVAL_MS
            report = check.run_once()
            if report.discarded:
                say(f"   ... {quiet} more checks of order 1004, every 30 s: UNKNOW each time")
                report_round(report, clock)
            else:
                quiet += 1
    answers = [(order, times) for order, times, _state in service.checks if order == 1004]
    expect(len(answers) == TRANSACTION_CHECK_MAX, f"1004 was checked {len(answers)} times")


def report_round(report, clock: Clock) -> None:
    for copy in report.checked:
        outcome = ("COMMIT_MESSAGE" if copy in report.committed else "ROLLBACK_MESSAGE"
                   if copy in report.rolled_back else "UNKNOW")
        say(f"   {clock.label()}: check #{copy.check_times} of order {int(copy.key)} -> "
            f"{outcome}")
    for half in report.discarded:
        say(f"   {clock.label()}: order {int(half.key)} had no answer after "
            f"{half.check_times} checks: moved to {CHECK_MAX_TIME_TOPIC}")


def show_log(data: str) -> None:
    step(5, "the log")
    payments = read_topic(data, TOPIC)
    orders = [int(m.key()) for m in payments]
    say(f"   {TOPIC} (read_committed): orders {orders}, each once")
    expect(orders == [1001, 1003], f"{TOPIC} holds {orders}")
    halves = read_topic(data, HALF_TOPIC)
    copies = [int(header(m, PROPERTY_TRANSACTION_CHECK_TIMES)) for m in halves]
    say(f"   {HALF_TOPIC}: {copies.count(0)} half messages and {len(halves) - copies.count(0)} "
        "re-appended copies (one per check, with TRANSACTION_CHECK_TIMES)")
    ops = read_topic(data, OP_HALF_TOPIC)
    for op in ops:
        say(f"   {OP_HALF_TOPIC}@{op.offset()}: body {op.value()!r} "
            f"(half offset {decode_op_body(op.value())[0]}), {header(op, PROPERTY_OP_TYPE)}")
    named = sorted(decode_op_body(op.value())[0] for op in ops)
    expect(named == sorted(set(named)) and len(named) == len(GATEWAY),
           f"op records name {named}")
    dead = [int(m.key()) for m in read_topic(data, CHECK_MAX_TIME_TOPIC)]
    say(f"   {CHECK_MAX_TIME_TOPIC}: orders {dead}")
    expect(dead == [1004], f"the dead-letter topic holds {dead}")


def run(work: str) -> None:
    data = os.path.join(work, "data")
    service = PaymentService(os.path.join(work, "payments.db"))
    clock = Clock(START_MS)
    try:
        with open_producer(data, service, clock) as producer:
            send_payments(producer)
        show_consumers(data)
        step(3, "the service restarts")
        with open_producer(data, service, clock) as producer:
            pending = [int(h.key) for h in producer.check_service.pending()]
            say(f"   undecided half messages found in the log: orders {pending}")
            expect(pending == [1003, 1004], f"pending after the restart: {pending}")
            check_back(producer, service, clock)
        show_log(data)
    finally:
        service.conn.close()


def main(argv: list[str] | None = None) -> int:
    args = parser("halfmsg", "RocketMQ-style transactional (half) messages: commit, rollback, "
                  "and an UNKNOW answer settled by the check-back").parse_args(argv)
    return run_demo("halfmsg", args, run)
