"""`logstore demo outbox`: the transactional outbox, with a relay killed by SIGKILL.

  1. a shop writes each order and its outbox row in ONE SQLite transaction; orders that fail
     their stock check roll back, and neither row exists;
  2. the outbox relay runs in a child process (`python -m txn.outbox`) and is killed with
     SIGKILL at chosen steps: after its Kafka transaction committed but before the rows were
     marked in SQLite, in the middle of a Kafka transaction, and after the commit was decided
     but before its markers were written; the shop keeps writing orders in between;
  3. a relay restarts: it re-initialises its transactional id (aborting or finishing what the
     dead one left), reads its checkpoint (a transactional offset commit made in the same
     Kafka transaction as the rows) and marks rows published-but-not-marked instead of
     publishing them again;
  4. counted with read_committed: every committed order exactly once, no rolled-back one;
     read_uncommitted also shows the copies of the transactions the kills aborted.

Thread-safety: a command-line program; single-threaded plus one child process at a time.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys

from txn.demos import (DEMO_BROKER, TIMEOUT_S, conf, expect, parser, read_topic, run_demo, say,
                       step)
from txn.outbox import (CHECKPOINT_TOPIC, DEFAULT_RELAY_ID, RELAY_GROUP_PREFIX, OutboxRelay,
                        connect, enqueue)

TOPIC = "orders"
BATCH_ROWS = 2
# Where each relay life dies: a failpoint, how many hits it lets through, what it means.
KILLS = [("outbox.after_commit", 1, "after a Kafka commit, before the rows were marked"),
         ("outbox.after_produce", 0, "in the middle of a Kafka transaction"),
         ("coordinator.after_prepare", 0, "commit decided, markers not yet written")]
OUT_OF_STOCK = {1003, 1006, 1008}


class Shop:
    """Orders and their outbox rows, one SQLite transaction each."""

    def __init__(self, path: str):
        self.conn = connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, "
                          "item TEXT)")
        self.conn.commit()
        self.next_order = 1001
        self.committed: list[int] = []
        self.rolled_back: list[int] = []

    def place(self, count: int) -> None:
        for _ in range(count):
            order, self.next_order = self.next_order, self.next_order + 1
            try:
                with self.conn:
                    self.conn.execute("INSERT INTO orders VALUES (?, ?)", (order, "beans"))
                    enqueue(self.conn, TOPIC, f"order {order}", key=str(order))
                    if order in OUT_OF_STOCK:
                        raise LookupError("out of stock")
                self.committed.append(order)
            except LookupError:
                self.rolled_back.append(order)

    def marked(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM outbox WHERE relayed_ms IS NOT NULL"
                                 ).fetchone()[0]


def relay_life(work: str, point: str, skip: int) -> int:
    """One relay in a child process, armed to die at `point`; its exit status."""
    command = [sys.executable, "-m", "txn.outbox", "--db", os.path.join(work, "shop.db"),
               "--log-dirs", os.path.join(work, "data"), "--batch-rows", str(BATCH_ROWS),
               "--until-idle"]
    command += [f"--config={key}={value}" for key, value in DEMO_BROKER.items()]
    env = dict(os.environ, LOGSTORE_FAILPOINTS=f"{point}=crash@{skip}")
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=10 * TIMEOUT_S)
    expect(done.returncode in (0, -signal.SIGKILL), f"the relay failed: {done.stderr[-2000:]}")
    return done.returncode


def checkpoint(data: str) -> int:
    from txn import Consumer, TopicPartition
    consumer = Consumer(conf(data, **{"group.id": RELAY_GROUP_PREFIX + DEFAULT_RELAY_ID}))
    try:
        found = consumer.committed([TopicPartition(CHECKPOINT_TOPIC, 0)], TIMEOUT_S)[0]
        return max(found.offset, 0)
    finally:
        consumer.close()


def orders_in_log(data: str, isolation: str = "read_committed") -> list[int]:
    return [int(m.key()) for m in read_topic(data, TOPIC, isolation)]


def kill_relays(work: str, shop: Shop, kills: int) -> None:
    data = os.path.join(work, "data")
    step(2, "the relay runs in a child process and is killed with SIGKILL")
    for point, skip, meaning in KILLS[:kills]:
        shop.place(3)
        status = relay_life(work, point, skip)
        expect(status == -signal.SIGKILL, f"the relay was not killed at {point}")
        say(f"   killed at {point} ({meaning}):")
        say(f"      SQLite: {shop.marked()} rows marked relayed; checkpoint: ids below "
            f"{checkpoint(data)} published; log: {len(orders_in_log(data))} orders")


def restart_relay(work: str, shop: Shop) -> None:
    step(3, "a relay restarts, reads its checkpoint and carries on")
    config = conf(os.path.join(work, "data"))
    with OutboxRelay(os.path.join(work, "shop.db"), config, batch_rows=BATCH_ROWS) as relay:
        say(f"   checkpoint: ids below {relay.next_id} are in the log; SQLite now marks "
            f"{shop.marked()} rows relayed (none published twice)")
        relayed = relay.run(until_idle=True)
        say(f"   relayed the remaining {relayed} rows; unrelayed rows left: "
            f"{relay.unrelayed()}")
        expect(relay.unrelayed() == 0, "rows were left in the outbox")


def count(work: str, shop: Shop) -> None:
    data = os.path.join(work, "data")
    step(4, f"counting '{TOPIC}'")
    seen = collections.Counter(orders_in_log(data))
    everything = collections.Counter(orders_in_log(data, "read_uncommitted"))
    say(f"   committed in SQLite: {len(shop.committed)} orders; rolled back: "
        f"{shop.rolled_back}")
    say(f"   read_committed: {sum(seen.values())} records, {len(seen)} distinct orders")
    aborted = sum(everything.values()) - sum(seen.values())
    say(f"   read_uncommitted: {sum(everything.values())} records, {aborted} of them from "
        "transactions the kills aborted")
    expect(set(seen) == set(shop.committed), "committed orders are missing from the log")
    expect(all(n == 1 for n in seen.values()), f"duplicates in the log: {seen}")
    expect(not set(seen) & set(shop.rolled_back), "a rolled-back order reached the log")
    say("   every committed order exactly once; no rolled-back order")


def run(work: str, kills: int) -> None:
    shop = Shop(os.path.join(work, "shop.db"))
    try:
        step(1, "the shop writes each order and its outbox row in one SQLite transaction")
        shop.place(2)
        say(f"   orders so far: committed {shop.committed}; out-of-stock orders roll back "
            "both rows")
        kill_relays(work, shop, kills)
        shop.place(2)
        restart_relay(work, shop)
        count(work, shop)
    finally:
        shop.conn.close()


def main(argv: list[str] | None = None) -> int:
    options = parser("outbox", "The transactional outbox: a relay publishing SQLite rows in "
                     "Kafka transactions, killed with SIGKILL and resumed.")
    options.add_argument("--kills", type=int, default=len(KILLS), choices=range(len(KILLS) + 1),
                         help=f"relay lives to kill (default {len(KILLS)})")
    args = options.parse_args(argv)
    return run_demo("outbox", args, lambda work: run(work, args.kills))
