"""Errors of the transaction, group and client layers, named and numbered as Kafka's (Errors.java).

Every class carries `code` (the protocol error code the wire server answers with), `name` (Kafka's
enum name, which confluent-kafka's KafkaError exposes as `name()`), `retriable` and, for the
transactional producer, `abortable` / `fatal` as librdkafka classifies them
(txn_requires_abort / fatal). They all derive from logstore.errors.LogstoreError, so one except
clause catches a storage error and a protocol error alike.

`error_for_code(code, message)` builds the right class from a code (the wire client side and the
KafkaError bridge use it).

Thread-safety: stateless.
"""

from __future__ import annotations

from logstore.errors import ERRORS_BY_CODE, LogstoreError, register


class TxnError(LogstoreError):
    """Base of this package's errors; `abortable` and `fatal` follow librdkafka's flags."""

    abortable = False
    fatal = False


def _define(class_name: str, code: int, kafka_name: str, *, retriable: bool = False,
            abortable: bool = False, fatal: bool = False, doc: str = "") -> type[TxnError]:
    cls = type(class_name, (TxnError,), {
        "code": code, "name": kafka_name, "retriable": retriable, "abortable": abortable,
        "fatal": fatal, "__doc__": doc or f"Kafka error {kafka_name} ({code})."})
    register(cls)
    return cls


CoordinatorLoadInProgress = _define("CoordinatorLoadInProgress", 14,
                                    "COORDINATOR_LOAD_IN_PROGRESS", retriable=True)
CoordinatorNotAvailable = _define("CoordinatorNotAvailable", 15, "COORDINATOR_NOT_AVAILABLE",
                                  retriable=True)
NotCoordinator = _define("NotCoordinator", 16, "NOT_COORDINATOR", retriable=True)
OffsetMetadataTooLarge = _define("OffsetMetadataTooLarge", 12, "OFFSET_METADATA_TOO_LARGE")
IllegalGeneration = _define("IllegalGeneration", 22, "ILLEGAL_GENERATION")
InconsistentGroupProtocol = _define("InconsistentGroupProtocol", 23,
                                    "INCONSISTENT_GROUP_PROTOCOL")
InvalidGroupId = _define("InvalidGroupId", 24, "INVALID_GROUP_ID")
UnknownMemberId = _define("UnknownMemberId", 25, "UNKNOWN_MEMBER_ID")
InvalidSessionTimeout = _define("InvalidSessionTimeout", 26, "INVALID_SESSION_TIMEOUT")
RebalanceInProgress = _define("RebalanceInProgress", 27, "REBALANCE_IN_PROGRESS")
InvalidCommitOffsetSize = _define("InvalidCommitOffsetSize", 28, "INVALID_COMMIT_OFFSET_SIZE")
UnsupportedVersion = _define("UnsupportedVersion", 35, "UNSUPPORTED_VERSION")
InvalidRequest = _define("InvalidRequest", 42, "INVALID_REQUEST")
OutOfOrderSequence = _define(
    "OutOfOrderSequence", 45, "OUT_OF_ORDER_SEQUENCE_NUMBER",
    doc="A batch's sequence does not follow the producer's last one on the partition.")
DuplicateSequence = _define("DuplicateSequence", 46, "DUPLICATE_SEQUENCE_NUMBER")
InvalidProducerEpoch = _define(
    "InvalidProducerEpoch", 47, "INVALID_PRODUCER_EPOCH", abortable=True,
    doc="A produce request carries an epoch older than the partition has seen.")
InvalidTxnState = _define(
    "InvalidTxnState", 48, "INVALID_TXN_STATE", fatal=True,
    doc="The operation is illegal in the transaction's current state.")
InvalidProducerIdMapping = _define("InvalidProducerIdMapping", 49,
                                   "INVALID_PRODUCER_ID_MAPPING", fatal=True)
InvalidTransactionTimeout = _define("InvalidTransactionTimeout", 50,
                                    "INVALID_TRANSACTION_TIMEOUT", fatal=True)
ConcurrentTransactions = _define("ConcurrentTransactions", 51, "CONCURRENT_TRANSACTIONS",
                                 retriable=True)
TransactionCoordinatorFenced = _define("TransactionCoordinatorFenced", 52,
                                       "TRANSACTION_COORDINATOR_FENCED", fatal=True)
UnknownProducerId = _define("UnknownProducerId", 59, "UNKNOWN_PRODUCER_ID", abortable=True)
GroupIdNotFound = _define("GroupIdNotFound", 69, "GROUP_ID_NOT_FOUND")
NonEmptyGroup = _define("NonEmptyGroup", 68, "NON_EMPTY_GROUP")
GroupMaxSizeReached = _define("GroupMaxSizeReached", 81, "GROUP_MAX_SIZE_REACHED")
MemberIdRequired = _define("MemberIdRequired", 79, "MEMBER_ID_REQUIRED")
FencedInstanceId = _define("FencedInstanceId", 82, "FENCED_INSTANCE_ID", fatal=True)
UnstableOffsetCommit = _define(
    "UnstableOffsetCommit", 88, "UNSTABLE_OFFSET_COMMIT", retriable=True,
    doc="A stable offset fetch found an offset still pending in an open transaction.")
ProducerFenced = _define(
    "ProducerFenced", 90, "PRODUCER_FENCED", fatal=True,
    doc="A newer instance with the same transactional.id has bumped the epoch.")
TransactionalIdNotFound = _define("TransactionalIdNotFound", 105, "TRANSACTIONAL_ID_NOT_FOUND")
TransactionAbortable = _define("TransactionAbortable", 120, "TRANSACTION_ABORTABLE",
                               abortable=True)


def error_for_code(code: int, message: str = "") -> LogstoreError:
    """An exception instance for a Kafka error code (LogstoreError for unknown codes)."""
    cls = ERRORS_BY_CODE.get(code, LogstoreError)
    err = cls(message or cls.name)
    if cls is LogstoreError:
        err.code = code
    return err
