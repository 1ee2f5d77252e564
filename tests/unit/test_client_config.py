"""Configuration of the embedded clients: confluent-kafka's keys and librdkafka's defaults,
rules and error codes; `log.dirs` picks the store; network keys are accepted and ignored;
`broker.` keys reach the Broker; anything else is refused naming the key."""

from __future__ import annotations

import pytest

from txn import AdminClient, Consumer, KafkaError, KafkaException, Producer
from txn.broker import Broker
from txn.client_config import IGNORED, SUPPORTED, parse_config

from client_support import conf, closing_all


def _code(excinfo) -> int:
    return excinfo.value.args[0].code()


def test_librdkafka_defaults():
    cfg = parse_config({"log.dirs": "x"})
    expected = {"acks": -1, "linger.ms": 5, "batch.num.messages": 10000, "batch.size": 1000000,
                "enable.idempotence": False, "transaction.timeout.ms": 60000,
                "isolation.level": "read_committed", "auto.offset.reset": "latest",
                "enable.auto.commit": True, "auto.commit.interval.ms": 5000,
                "enable.auto.offset.store": True, "session.timeout.ms": 45000,
                "heartbeat.interval.ms": 3000, "max.poll.interval.ms": 300000,
                "fetch.wait.max.ms": 500, "max.partition.fetch.bytes": 1048576,
                "partition.assignment.strategy": ("range", "roundrobin"),
                "partitioner": "consistent_random", "message.max.bytes": 1000000,
                "queue.buffering.max.messages": 100000, "compression.type": 0,
                "enable.partition.eof": False, "client.id": "rdkafka"}
    assert {name: cfg[name] for name in expected} == expected


@pytest.mark.parametrize("client", [Producer, Consumer, AdminClient])
def test_an_unknown_key_is_refused_by_name(tmp_path, client):
    with pytest.raises(KafkaException) as excinfo:
        client(conf(tmp_path, **{"group.id": "g", "linger.msec": 5}))
    assert _code(excinfo) == KafkaError._INVALID_ARG
    assert "linger.msec" in str(excinfo.value)
    assert "unknown configuration property" in str(excinfo.value)


@pytest.mark.parametrize("client", [Producer, Consumer, AdminClient])
def test_without_log_dirs_the_error_points_to_confluent_kafka(client):
    with pytest.raises(KafkaException) as excinfo:
        client({"bootstrap.servers": "kafka:9092", "group.id": "g"})
    assert _code(excinfo) == KafkaError._INVALID_ARG
    text = excinfo.value.args[0].str()
    assert "log.dirs" in text and f"confluent_kafka.{client.__name__}" in text


def test_network_and_security_keys_are_accepted_and_ignored(tmp_path):
    network = {"bootstrap.servers": "a:9092,b:9092", "security.protocol": "SASL_SSL",
               "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p",
               "ssl.ca.location": "/etc/ca.pem", "socket.timeout.ms": 1000,
               "socket.keepalive.enable": True, "retries": 3, "request.timeout.ms": 1,
               "message.timeout.ms": 300000, "statistics.interval.ms": 0, "debug": "all",
               "client.rack": "r1", "reconnect.backoff.ms": 10}
    cfg = parse_config(conf(tmp_path, **{**network}))
    assert set(cfg.ignored) == set(network)
    assert all(name in IGNORED or name.startswith(("ssl.", "sasl.", "socket."))
               for name in network)
    producer = Producer(conf(tmp_path, **{**network}))
    with closing_all(producer):
        producer.produce("t", b"v")
        assert producer.flush(10) == 0


def test_values_in_librdkafka_string_form_and_aliases():
    cfg = parse_config({"log.dirs": "x", "enable.idempotence": "true", "linger.ms": "20",
                        "request.required.acks": "all", "queue.buffering.max.ms": "7",
                        "compression.codec": "lz4", "auto.offset.reset": "smallest"})
    assert cfg["enable.idempotence"] is True
    assert cfg["linger.ms"] == 7                  # the alias, given later, wins
    assert cfg["acks"] == -1 and cfg["compression.type"] == 3
    assert cfg["auto.offset.reset"] == "earliest"


@pytest.mark.parametrize("name, value", [("acks", "most"), ("linger.ms", "soon"),
                                         ("isolation.level", "read_dirty"),
                                         ("enable.auto.commit", "maybe"),
                                         ("linger.ms", -1), ("partitioner", "modulo"),
                                         ("on_delivery", 5)])
def test_invalid_values_name_the_property(name, value):
    with pytest.raises(KafkaException) as excinfo:
        parse_config({"log.dirs": "x", name: value})
    assert _code(excinfo) == KafkaError._INVALID_ARG
    assert f'"{name}"' in str(excinfo.value)


def test_idempotence_follows_librdkafkas_rules():
    assert parse_config({"log.dirs": "x"})["enable.idempotence"] is False
    assert parse_config({"log.dirs": "x", "transactional.id": "t"})["enable.idempotence"]
    with pytest.raises(KafkaException, match="requires `enable.idempotence=true`"):
        parse_config({"log.dirs": "x", "transactional.id": "t", "enable.idempotence": False})
    with pytest.raises(KafkaException, match="`acks` must be set to `all`"):
        parse_config({"log.dirs": "x", "enable.idempotence": True, "acks": 1})


def test_unsupported_librdkafka_features_are_refused_with_the_reason():
    with pytest.raises(KafkaException, match="KIP-848"):
        parse_config({"log.dirs": "x", "group.protocol": "consumer"})
    with pytest.raises(KafkaException, match="cooperative"):
        parse_config({"log.dirs": "x", "partition.assignment.strategy": "cooperative-sticky"})


def test_consumer_requires_a_group_id(tmp_path):
    with pytest.raises(ValueError, match="group.id must be set"):
        Consumer(conf(tmp_path))


def test_keyword_arguments_override_with_underscores_for_dots(tmp_path):
    cfg = parse_config({"log.dirs": "x", "linger.ms": 1}, {"linger_ms": 9, "on_delivery": print,
                                                             "enable_idempotence": True})
    assert cfg["linger.ms"] == 9 and cfg["on_delivery"] is print
    assert cfg["enable.idempotence"] is True
    producer = Producer(log_dirs=str(tmp_path), client_id="kw")
    with closing_all(producer):
        assert producer._config["client.id"] == "kw"


def test_clients_of_one_directory_share_one_engine_until_the_last_closes(tmp_path):
    producer = Producer(conf(tmp_path))
    consumer = Consumer({"log.dirs": str(tmp_path / "."), "group.id": "g"})
    assert producer._broker is consumer._broker
    broker = producer._broker
    producer.close()
    assert not broker.closed
    consumer.close()
    assert broker.closed


def test_broker_prefixed_keys_configure_the_engine(tmp_path):
    producer = Producer(conf(tmp_path, **{"broker.num.partitions": 3,
                         "broker.transaction.max.timeout.ms": 120000}))
    with closing_all(producer):
        producer.produce("auto", b"v")
        assert producer.flush(10) == 0
        assert len(producer.list_topics("auto").topics["auto"].partitions) == 3
        assert producer._broker.config["transaction.max.timeout.ms"] == 120000


def test_a_bad_broker_key_is_an_invalid_argument(tmp_path):
    with pytest.raises(KafkaException) as excinfo:
        Producer(conf(tmp_path, **{"broker.no.such.setting": 1}))
    assert _code(excinfo) == KafkaError._INVALID_ARG
    assert not Broker._registry


def test_every_supported_key_has_a_kind():
    assert all(key.kind in ("int", "bool", "str", "enum", "callable", "object", "list")
               for key in SUPPORTED.values())


def test_callbacks_belong_to_their_client_as_in_confluent_kafka(tmp_path):
    with pytest.raises(KafkaException, match="on_delivery"):
        Consumer(conf(tmp_path, **{"group.id": "g", "on_delivery": print}))
    with pytest.raises(KafkaException, match="on_commit"):
        Producer(conf(tmp_path, on_commit=print))
