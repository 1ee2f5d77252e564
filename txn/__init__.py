"""txn: the transaction layer over logstore, and the embedded confluent-kafka-compatible
clients.

`from txn import Producer, Consumer, AdminClient, TopicPartition, KafkaError, KafkaException`
gives the same names, arguments, configuration keys and error codes as confluent_kafka, over
a data directory named by `log.dirs` (txn/client_config.py lists the keys). The names are
loaded on first use, so importing a submodule (txn.broker, txn.coordinator, ...) does not
import the clients.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Producer": "txn.producer",
    "Consumer": "txn.consumer",
    "AdminClient": "txn.admin",
    "NewTopic": "txn.admin_types",
    "NewPartitions": "txn.admin_types",
    "KafkaError": "txn.kafka_error",
    "KafkaException": "txn.kafka_error",
    "Message": "txn.message",
    "TopicPartition": "txn.message",
    "ConsumerGroupMetadata": "txn.message",
    "OFFSET_BEGINNING": "txn.message",
    "OFFSET_END": "txn.message",
    "OFFSET_STORED": "txn.message",
    "OFFSET_INVALID": "txn.message",
    "TIMESTAMP_NOT_AVAILABLE": "txn.message",
    "TIMESTAMP_CREATE_TIME": "txn.message",
    "TIMESTAMP_LOG_APPEND_TIME": "txn.message",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'txn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
