"""kill -9 the outbox relay again and again; count what reached the log.

Goal: whatever step a SIGKILL interrupts (selecting rows, producing them in the open Kafka
transaction, committing the checkpoint with them, between the commit's prepare and its markers,
between the commit and the SQLite marks, after the marks, or a random moment), every business
transaction committed in SQLite appears in the log exactly once (read_committed) and no
rolled-back one ever appears.
Method: this process plays the application: it writes orders with their outbox rows in SQLite
transactions (a quarter of them rolled back) between and during the relay's lives. The relay
runs as `python -m txn.outbox` in a child process, killed at a failpoint armed through
LOGSTORE_FAILPOINTS (with a random number of hits let through first) or by os.kill after a
random delay, at least KILLS_MIN times. A last relay then drains the outbox, and the log is
counted by order number. The random choices come from a fixed seed; what each kill interrupts
depends on timing, which is the point; the kill points take turns, so each one fires.
"""

from __future__ import annotations

import collections
import os
import random
import select
import signal
import subprocess
import sys
import time

from txn import Consumer, TopicPartition
from txn.outbox import OutboxRelay, connect, enqueue

FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1}
SEED = 20_261_121
KILLS_MIN = 22
LIVES_MAX = 80                       # relay lives before giving up on reaching KILLS_MIN
KILL_POINTS = ["outbox.after_select", "outbox.after_produce", "outbox.before_commit",
               "coordinator.after_prepare", "coordinator.after_marker", "outbox.after_commit",
               "outbox.after_mark"]
TIMER = "timer"
CHILD_TIMEOUT_S = 120
ROLLBACK_SHARE = 0.25
TOPIC = "orders"


class Application:
    """Writes orders and their outbox rows; remembers which committed and which did not."""

    def __init__(self, path: str, rng: random.Random):
        self.conn = connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS orders (order_no INTEGER PRIMARY KEY)")
        self.conn.commit()
        self.rng = rng
        self.next_no = 1
        self.committed: set[int] = set()
        self.rolled_back: set[int] = set()

    def place_orders(self, count: int) -> None:
        for _ in range(count):
            order_no, self.next_no = self.next_no, self.next_no + 1
            fail = self.rng.random() < ROLLBACK_SHARE
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT INTO orders VALUES (?)", (order_no,))
            enqueue(self.conn, TOPIC, b"order %d" % order_no, key=b"%d" % order_no)
            if fail:
                self.conn.rollback()
                self.rolled_back.add(order_no)
            else:
                self.conn.commit()
                self.committed.add(order_no)


def kill_schedule(rng: random.Random):
    """Every kill point and the timer (twice) in a fresh random order, round after round."""
    while True:
        points = KILL_POINTS + [TIMER, TIMER]
        rng.shuffle(points)
        yield from points


def relay_command(tmp_path, batch_rows: int, until_idle: bool) -> list[str]:
    command = [sys.executable, "-m", "txn.outbox", "--db", str(tmp_path / "app.db"),
               "--log-dirs", str(tmp_path / "data"), "--batch-rows", str(batch_rows)]
    command += [f"--config={key}={value}" for key, value in FAST_BROKER.items()]
    return command + (["--until-idle"] if until_idle else [])


def life_with_failpoint(tmp_path, rng, point: str) -> int:
    """A relay that drains the outbox unless the failpoint kills it first; its exit status."""
    env = dict(os.environ, LOGSTORE_FAILPOINTS=f"{point}=crash@{rng.randint(0, 1)}")
    done = subprocess.run(relay_command(tmp_path, rng.randint(1, 3), True), env=env,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


def life_with_timer(tmp_path, rng, app: Application) -> int:
    """A relay killed at a random moment while the application keeps writing."""
    env = dict(os.environ, LOGSTORE_FAILPOINTS="")
    child = subprocess.Popen(relay_command(tmp_path, rng.randint(1, 3), False), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], CHILD_TIMEOUT_S)
        assert ready and "ready" in child.stdout.readline()
        app.place_orders(rng.randint(1, 4))
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(child.pid, signal.SIGKILL)
        return child.wait(CHILD_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def read_log(tmp_path) -> collections.Counter:
    consumer = Consumer({"log.dirs": str(tmp_path / "data"), **FAST_BROKER, "group.id": "audit",
                         "isolation.level": "read_committed", "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        seen = collections.Counter()
        while True:
            message = consumer.poll(5.0)
            assert message is not None
            if message.error() is not None:
                return seen
            seen[int(message.value().split()[1])] += 1
    finally:
        consumer.close()


def test_every_committed_order_reaches_the_log_once_across_kills(tmp_path):
    rng = random.Random(SEED)
    app = Application(str(tmp_path / "app.db"), rng)
    kills: collections.Counter = collections.Counter()
    schedule = kill_schedule(rng)
    lives = 0
    every_point = set(KILL_POINTS) | {TIMER}
    while (sum(kills.values()) < KILLS_MIN or set(kills) != every_point) and lives < LIVES_MAX:
        lives += 1
        app.place_orders(rng.randint(2, 6))
        point = next(schedule)
        if point == TIMER:
            status = life_with_timer(tmp_path, rng, app)
        else:
            status = life_with_failpoint(tmp_path, rng, point)
        if status == -signal.SIGKILL:
            kills[point] += 1
    assert sum(kills.values()) >= KILLS_MIN, kills
    assert set(kills) == every_point, kills                # every step was interrupted

    with OutboxRelay(str(tmp_path / "app.db"), {"log.dirs": str(tmp_path / "data"),
                                                 **FAST_BROKER}) as relay:
        relay.run(until_idle=True)
        assert relay.unrelayed() == 0
    app.conn.close()

    seen = read_log(tmp_path)
    assert app.committed and app.rolled_back
    assert not set(seen) & app.rolled_back, "a rolled-back order reached the log"
    assert set(seen) == app.committed, "a committed order is missing"
    duplicates = {order: n for order, n in seen.items() if n != 1}
    assert not duplicates, f"orders in the log more than once: {duplicates}"
