"""`logstore demo [NAME]`: the narrated demos, and the order-service demo of transactions.

The registry `DEMOS` maps a name to "module:function" (`main(argv) -> int | None`); modules are
imported only when their demo runs, and a demo whose module is not there is a one-line error.
`logstore demo` with no name runs `orders`; `logstore demo --help` lists the demos.

The orders demo (`logstore demo` / `logstore demo orders [--dir DIR] [--keep]`), step by step:

  1. an order service writes orders and their payments to two topics in one transaction;
  2. a second transaction is aborted (a payment declined): its records stay in the log;
  3. zombie fencing: instance B starts with instance A's transactional.id while A has a
     transaction open; A's open transaction is aborted, and A's commit fails with the fatal
     _FENCED error (the coordinator's PRODUCER_FENCED, as librdkafka reports it);
  4. a read_committed and a read_uncommitted consumer print what each sees, side by side;
  5. a shipping stage (consume-process-produce) moves orders to `shipments`, committing its
     consumer offsets inside each transaction (send_offsets_to_transaction). It runs in a child
     process that is killed with SIGKILL in the middle of a transaction; a restarted stage
     fences the dead one's transaction, resumes exactly after the committed offsets, and every
     order ends up shipped exactly once.

Everything happens under a temporary directory (or --dir), removed at the end unless --keep.
The demo checks what it narrates and exits 1 if something is not as it says.
Thread-safety: a command-line program; single-threaded (step 5 adds one child process).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from txn import demos
from txn.demos import PROG, TIMEOUT_S, expect, say, step

DEFAULT_DEMO = "orders"


@dataclass(frozen=True)
class Demo:
    target: str            # "module:function"
    summary: str


DEMOS: dict[str, Demo] = {
    "orders": Demo("txn.demo:orders_main", "transactions: an order service, fencing, "
                                           "read_committed, exactly-once processing"),
    "storage": Demo("logstore.demo:main", "the storage layer: segments, indexes, kill -9 "
                                          "recovery, verify, dump"),
    "halfmsg": Demo("txn.demos.halfmsg:main", "RocketMQ-style half messages, checked back "
                                              "against a local transaction"),
    "outbox": Demo("txn.demos.outbox:main", "the transactional outbox pattern"),
    "idempotent-consumer": Demo("txn.demos.idempotent_consumer:main",
                                "an idempotent consumer (deduplicating redeliveries)"),
}

ORDERS, PAYMENTS, SHIPMENTS = "orders", "payments", "shipments"
ORDER_PARTITIONS = 1
SERVICE_ID = "order-service"
STAGE_ID = "shipping-stage"
STAGE_GROUP = "shipping"
STAGE_BATCH = 2                      # orders per shipping transaction
STAGE_COMMITS_BEFORE_CRASH = 2       # the child commits this many, then dies mid-transaction
IDLE_S = 0.5                         # a stage stops after this long without an order
COLUMN = 44
LAST_ORDERS = range(1007, 1011)      # written before the shipping stage starts
ITEMS = {1001: ("espresso-machine", "249.00"), 1002: ("grinder", "89.50"),
         1003: ("milk-jug", "12.90"), 1004: ("golden-kettle", "1999.00"),
         1005: ("tamper", "24.00"), 1006: ("scale", "39.00"), 1007: ("beans-1kg", "18.00"),
         1008: ("filters", "4.20"), 1009: ("descaler", "9.90"), 1010: ("cups", "21.00")}


# ------------------------------------------------------------------------------------------------
# The registry


def main(argv: list[str] | None = None) -> int:
    """`logstore demo [NAME] [ARGS...]`: run the named demo (default: orders)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = args.pop(0) if args and not args[0].startswith("-") else DEFAULT_DEMO
    demo = DEMOS.get(name)
    if demo is None:
        print(f"{PROG}: error: no demo named {name!r} (choose from {', '.join(DEMOS)})",
              file=sys.stderr)
        return 2
    function = load(demo.target)
    if function is None:
        module = demo.target.partition(":")[0]
        print(f"{PROG}: error: the {name!r} demo is not available: module {module} is not "
              "installed", file=sys.stderr)
        return 1
    result = function(args)
    return result if isinstance(result, int) else 0


def usage() -> str:
    lines = [f"usage: {PROG} [NAME] [--dir DIR] [--keep] ...", "",
             f"Runs a narrated demo on a throw-away directory (default: {DEFAULT_DEMO}).", "",
             "demos:"]
    lines += [f"  {name:<20} {demo.summary}" for name, demo in DEMOS.items()]
    lines += ["", f"'{PROG} NAME --help' shows a demo's options."]
    return "\n".join(lines)


def load(target: str):
    """The function named by "module:function", or None when the module does not exist (an
    import error inside an existing module is raised as it is)."""
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        parts = module_name.split(".")
        missing = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if exc.name in missing:
            return None
        raise
    return getattr(module, function_name)


# ------------------------------------------------------------------------------------------------
# The orders demo: helpers


def conf(data: str, **extra) -> dict:
    return {"log.dirs": data, **extra}


def order_value(order: int) -> bytes:
    item, amount = ITEMS[order]
    return f"order {order} {item} {amount}".encode()


def payment_value(order: int) -> bytes:
    return f"payment {order} {ITEMS[order][1]}".encode()


def order_id(value: bytes) -> int:
    """The order id in an order, payment or shipment value (its first number)."""
    return next(int(word) for word in value.split() if word.isdigit())


def write_orders(producer, orders) -> None:
    """One order and its payment per order id, keyed by the id (the caller's transaction)."""
    for order in orders:
        key = str(order).encode()
        producer.produce(ORDERS, order_value(order), key)
        producer.produce(PAYMENTS, payment_value(order), key)


def read_all(data: str, isolation: str, topics: list[tuple[str, int]]) -> list:
    """Every record of the topics' partitions as one consumer with `isolation` sees them."""
    from txn import Consumer, TopicPartition
    consumer = Consumer(conf(data, **{"group.id": f"demo-{isolation}",
                                      "isolation.level": isolation,
                                      "enable.partition.eof": True,
                                      "enable.auto.commit": False}))
    try:
        partitions = [TopicPartition(t, p, 0) for t, count in topics for p in range(count)]
        return demos.read_to_end(consumer, partitions, f"the {isolation} reader")
    finally:
        consumer.close()


def fenced_text(exc) -> str:
    error = exc.args[0]
    return f"{error.name()} (fatal={error.fatal()}): {error.str()}"


# ------------------------------------------------------------------------------------------------
# The orders demo: steps 1-4 (one process)


def commit_orders(data: str) -> None:
    from txn import Producer
    step(1, "an order service writes orders and payments in one transaction")
    with Producer(conf(data, **{"transactional.id": SERVICE_ID})) as producer:
        producer.init_transactions(TIMEOUT_S)
        producer.begin_transaction()
        write_orders(producer, (1001, 1002, 1003))
        producer.commit_transaction(TIMEOUT_S)
    say(f"   transactional.id={SERVICE_ID!r}: orders 1001-1003 to '{ORDERS}' and their payments "
        f"to '{PAYMENTS}',")
    say("   committed together: a consumer sees all six records or none")


def abort_order(data: str) -> None:
    from txn import Producer
    step(2, "a transaction is aborted")
    with Producer(conf(data, **{"transactional.id": SERVICE_ID})) as producer:
        producer.init_transactions(TIMEOUT_S)
        producer.begin_transaction()
        write_orders(producer, (1004,))
        expect(producer.flush(TIMEOUT_S) == 0, "order 1004 was not written")
        producer.abort_transaction(TIMEOUT_S)
    say("   order 1004 and its payment were written (and fsynced), then the bank declined the")
    say("   payment: abort_transaction(). The records stay in the log; an ABORT marker "
        "follows them")


def fence_zombie(data: str) -> None:
    from txn import KafkaError, KafkaException, Producer
    step(3, "zombie fencing: a second instance with the same transactional.id")
    zombie = Producer(conf(data, **{"transactional.id": SERVICE_ID}))
    successor = Producer(conf(data, **{"transactional.id": SERVICE_ID}))
    try:
        zombie.init_transactions(TIMEOUT_S)
        zombie.begin_transaction()
        write_orders(zombie, (1005,))
        expect(zombie.flush(TIMEOUT_S) == 0, "order 1005 was not written")
        say("   instance A began a transaction, wrote order 1005, then stalled (a long pause)")
        successor.init_transactions(TIMEOUT_S)
        say("   instance B called init_transactions() with the same id: the producer epoch "
            "went up and")
        say("   A's open transaction was aborted by the coordinator")
        fenced = None
        try:
            zombie.commit_transaction(TIMEOUT_S)
        except KafkaException as exc:
            fenced = exc
        expect(fenced is not None, "the zombie's commit succeeded")
        error = fenced.args[0]
        expect(error.code() == KafkaError._FENCED and error.fatal(),
               f"the zombie's commit failed with {error!r}, not a fatal _FENCED")
        say(f"   A wakes up, commit_transaction() raises {fenced_text(fenced)}")
        say("   (the coordinator's PRODUCER_FENCED; librdkafka reports it as the fatal _FENCED:"
            " A can only close)")
        successor.begin_transaction()
        write_orders(successor, (1005, 1006))
        successor.commit_transaction(TIMEOUT_S)
        say("   B wrote orders 1005 (again) and 1006 and committed")
    finally:
        zombie.close()
        successor.close()


def side_by_side(data: str) -> None:
    step(4, "what a read_committed and a read_uncommitted consumer see")
    topics = [(ORDERS, ORDER_PARTITIONS), (PAYMENTS, 1)]
    committed = read_all(data, "read_committed", topics)
    dirty = read_all(data, "read_uncommitted", topics)
    seen = {_where(m): m.value() for m in committed}
    say(f"   {'record':<14}{'read_committed':<{COLUMN}}read_uncommitted")
    for message in sorted(dirty, key=_position):
        left = seen.get(_where(message))
        right = message.value().decode() + ("" if left is not None else "   <- aborted")
        say(f"   {_where(message):<14}{(left or b'-').decode():<{COLUMN}}{right}")
    ids = [order_id(m.value()) for m in committed]
    expect(sorted(ids) == sorted(2 * [1001, 1002, 1003, 1005, 1006]),
           f"read_committed saw orders {sorted(ids)}")
    expect(set(seen) <= {_where(m) for m in dirty}, "read_committed saw a record that "
                                                    "read_uncommitted did not")
    say(f"   read_committed: {len(committed)} records; read_uncommitted: {len(dirty)} (it also "
        "returns the")
    say("   aborted transactions' records). Markers take offsets too, so offsets have gaps.")


def _where(message) -> str:
    return f"{message.topic()}-{message.partition()}@{message.offset()}"


def _position(message) -> tuple:
    return message.topic(), message.partition(), message.offset()


def more_orders(data: str) -> None:
    from txn import Producer
    with Producer(conf(data, **{"transactional.id": SERVICE_ID})) as producer:
        producer.init_transactions(TIMEOUT_S)
        producer.begin_transaction()
        write_orders(producer, LAST_ORDERS)
        producer.commit_transaction(TIMEOUT_S)
    say(f"   the order service commits orders {LAST_ORDERS[0]}-{LAST_ORDERS[-1]} as well")


# ------------------------------------------------------------------------------------------------
# The orders demo: step 5, the shipping stage (consume-process-produce)


def open_stage(data: str):
    """The stage's transactional producer (fencing any earlier instance) and its consumer."""
    from txn import Consumer, Producer
    producer = Producer(conf(data, **{"transactional.id": STAGE_ID}))
    producer.init_transactions(TIMEOUT_S)
    consumer = Consumer(conf(data, **{"group.id": STAGE_GROUP,
                                      "isolation.level": "read_committed",
                                      "enable.auto.commit": False,
                                      "auto.offset.reset": "earliest"}))
    consumer.subscribe([ORDERS])
    return producer, consumer


def take(consumer, size: int, wait_s: float) -> list:
    """Up to `size` orders: waits up to wait_s for the first, then stops at a short lull."""
    batch = []
    deadline = time.monotonic() + wait_s
    while len(batch) < size and time.monotonic() < deadline:
        message = consumer.poll(0.05)
        if message is None or message.error() is not None:
            continue
        batch.append(message)
        deadline = time.monotonic() + IDLE_S
    return batch


def ship(producer, consumer, batch: list) -> str:
    """One shipment per order, and the consumer's positions, in one open transaction."""
    producer.begin_transaction()
    for message in batch:
        producer.produce(SHIPMENTS, b"shipment " + message.value(), message.key())
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), TIMEOUT_S)
    return ", ".join(f"{order_id(m.value())} ({_where(m)})" for m in batch)


def stage_worker(argv: list[str]) -> int:
    """The first shipping stage instance, run in a child process: it commits
    STAGE_COMMITS_BEFORE_CRASH transactions, then writes one more (shipments and offsets), says
    OPEN and waits for the parent's SIGKILL. One protocol line per transaction on stdout."""
    producer, consumer = open_stage(argv[0])
    for number in range(1, STAGE_COMMITS_BEFORE_CRASH + 2):
        batch = take(consumer, STAGE_BATCH, TIMEOUT_S)
        if len(batch) < STAGE_BATCH:
            print(f"FAILED only {len(batch)} order(s) to ship", flush=True)
            return 1
        shipped = ship(producer, consumer, batch)
        if number > STAGE_COMMITS_BEFORE_CRASH:
            producer.flush(TIMEOUT_S)
            print(f"OPEN {shipped}", flush=True)
            time.sleep(TIMEOUT_S)                 # killed here
            return 1
        producer.commit_transaction(TIMEOUT_S)
        print(f"COMMITTED {shipped}", flush=True)
    return 1


CHILD_CODE = "import sys; from txn.demo import stage_worker; sys.exit(stage_worker(sys.argv[1:]))"


def crash_stage(data: str) -> None:
    """Run the first stage instance in a child process and kill -9 it mid-transaction."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-c", CHILD_CODE, data], stdout=subprocess.PIPE,
                             text=True, env=env)
    killed = False
    try:
        for line in child.stdout:
            kind, _, text = line.rstrip("\n").partition(" ")
            if kind == "COMMITTED":
                say(f"   stage (pid {child.pid}): shipped and committed orders {text}")
            elif kind == "OPEN":
                say(f"   stage (pid {child.pid}): shipped orders {text}, offsets sent, not "
                    "yet committed")
                os.kill(child.pid, signal.SIGKILL)
                killed = True
                say("   kill -9 the stage in the middle of its transaction")
                break
            else:
                say(f"   stage: {line.rstrip()}")
    finally:
        if child.poll() is None and not killed:
            child.kill()
        child.wait(TIMEOUT_S)
        child.stdout.close()
    expect(killed and child.returncode == -signal.SIGKILL,
           f"the stage child ended with status {child.returncode} before its crash point")


def restart_stage(data: str, orders: list) -> None:
    """A new stage instance: fences the dead one, resumes after the committed offsets
    (`orders`: the committed orders, to say where it should resume)."""
    from txn import TopicPartition
    producer, consumer = open_stage(data)
    try:
        say("   restart: init_transactions() with the same transactional.id fenced the dead "
            "instance")
        say("   and aborted its open transaction (its shipments and offsets are discarded)")
        committed = consumer.committed(
            [TopicPartition(ORDERS, p) for p in range(ORDER_PARTITIONS)], TIMEOUT_S)
        say("   committed offsets of group 'shipping': " + ", ".join(
            f"{tp.topic}-{tp.partition} -> {tp.offset if tp.offset >= 0 else 'none'}"
            for tp in committed))
        first: dict[int, int] = {}
        wait_s = TIMEOUT_S
        while batch := take(consumer, STAGE_BATCH, wait_s):
            for message in batch:
                first.setdefault(message.partition(), message.offset())
            shipped = ship(producer, consumer, batch)
            producer.commit_transaction(TIMEOUT_S)
            say(f"   stage (restarted): shipped and committed orders {shipped}")
            wait_s = IDLE_S
    finally:
        consumer.close()
        producer.close()
    for tp in committed:
        show_resume(tp, first.get(tp.partition), orders)


def show_resume(committed, first: int | None, orders: list) -> None:
    """Say where the restarted stage resumed on one partition, and check it: at the first
    committed order at or after the committed offset."""
    later = [m.offset() for m in orders
             if m.partition() == committed.partition and m.offset() >= committed.offset]
    expected = min(later) if later else None
    expect(first == expected, f"{ORDERS}-{committed.partition}: resumed at {first}, expected "
                              f"{expected} (committed offset {committed.offset})")
    name = f"{ORDERS}-{committed.partition}"
    if first is None:
        say(f"   {name}: nothing left after the committed offset {committed.offset}")
    elif first == committed.offset:
        say(f"   {name}: resumed at offset {first}, exactly the committed offset")
    else:
        say(f"   {name}: resumed at offset {first}, the first committed order after the "
            f"committed offset {committed.offset} (offsets between hold markers or aborted "
            "records)")


def check_shipments(data: str, orders: list) -> None:
    shipped = read_all(data, "read_committed", [(SHIPMENTS, 1)])
    dirty = read_all(data, "read_uncommitted", [(SHIPMENTS, 1)])
    wanted = sorted(order_id(m.value()) for m in orders)
    got = sorted(order_id(m.value()) for m in shipped)
    expect(got == wanted, f"shipments {got} do not match the committed orders {wanted}")
    say(f"   '{SHIPMENTS}', read_committed: {len(shipped)} records for {len(wanted)} committed "
        "orders: every order shipped exactly once")
    say(f"   (read_uncommitted also returns the {len(dirty) - len(shipped)} shipment(s) of the "
        "killed transaction)")


# ------------------------------------------------------------------------------------------------
# The orders demo: the program


def orders_main(argv: list[str] | None = None) -> int:
    args = demos.parser("orders", "Kafka transactions, narrated: an order service, an aborted "
                        "transaction, zombie fencing, read_committed vs read_uncommitted, and "
                        "an exactly-once shipping stage killed with SIGKILL and restarted."
                        ).parse_args(argv)
    return demos.run_demo("orders", args, run_orders)


def run_orders(data: str) -> None:
    from txn import AdminClient, NewTopic
    with AdminClient(conf(data)) as admin:             # holds the engine for steps 1-4
        topics = [NewTopic(ORDERS, ORDER_PARTITIONS), NewTopic(PAYMENTS, 1),
                  NewTopic(SHIPMENTS, 1)]
        for future in admin.create_topics(topics).values():
            future.result(TIMEOUT_S)
        say(f"topics: '{ORDERS}', '{PAYMENTS}', '{SHIPMENTS}'")
        commit_orders(data)
        abort_order(data)
        fence_zombie(data)
        side_by_side(data)
        step(5, "a shipping stage: consume orders, produce shipments, commit both at once")
        more_orders(data)
    say(f"   the stage reads '{ORDERS}' (read_committed, group {STAGE_GROUP!r}) and writes "
        f"'{SHIPMENTS}';")
    say("   each transaction carries its shipments and the consumer offsets "
        "(send_offsets_to_transaction)")
    crash_stage(data)                                   # the engine is free for the child
    with AdminClient(conf(data)):                       # reopened (recovered) once for both
        orders = read_all(data, "read_committed", [(ORDERS, ORDER_PARTITIONS)])
        restart_stage(data, orders)
        check_shipments(data, orders)


if __name__ == "__main__":
    sys.exit(main())
