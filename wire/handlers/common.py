"""Small helpers the handler modules share: error codes of exceptions, node identity, topic ids.

Thread-safety: stateless.
"""

from __future__ import annotations

import base64
import logging
import uuid

from logstore.errors import LogstoreError

logger = logging.getLogger("wire.handlers")

NONE = 0
UNKNOWN_SERVER_ERROR = -1
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC = 17
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_REQUEST = 42
OPERATION_NOT_ATTEMPTED = 55
FETCH_SESSION_ID_NOT_FOUND = 70
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
LEADER_EPOCH = 0                 # one node, never re-elected: every partition's leader epoch
AUTHORIZED_OPERATIONS_OMITTED = -2147483648
ZERO_UUID = uuid.UUID(int=0)


def code_of(exc: BaseException, what: str = "") -> int:
    """The Kafka error code of an exception raised by the Broker (logged when unexpected)."""
    code = getattr(exc, "code", None)
    if isinstance(exc, LogstoreError) and isinstance(code, int):
        return code
    logger.error("unexpected error%s: %r", f" ({what})" if what else "", exc, exc_info=exc)
    return UNKNOWN_SERVER_ERROR


def message_of(exc: BaseException | None) -> str | None:
    return None if exc is None else str(exc) or type(exc).__name__


def topic_uuid(topic_id: str) -> uuid.UUID:
    """The UUID of a store topic id (URL-safe base64 of 16 bytes, no padding)."""
    if not topic_id:
        return ZERO_UUID
    try:
        raw = base64.urlsafe_b64decode(topic_id + "=" * (-len(topic_id) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError):
        return ZERO_UUID


def topic_by_id(store, wanted: uuid.UUID) -> str | None:
    for name, info in store.topics().items():
        if topic_uuid(info.topic_id) == wanted:
            return name
    return None


def leader_epoch_error(requested: int) -> int:
    """current_leader_epoch checks of Fetch/ListOffsets (-1: the client does not know)."""
    if requested < 0 or requested == LEADER_EPOCH:
        return NONE
    return FENCED_LEADER_EPOCH if requested < LEADER_EPOCH else UNKNOWN_LEADER_EPOCH
