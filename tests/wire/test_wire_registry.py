"""The API registry and the kio glue: the advertised table, schema availability, building
entities across versions, blank error responses, the ApiVersions answer."""

from __future__ import annotations

import datetime

import pytest
from kio.schema.errors import ErrorCode

import wire.handlers  # noqa: F401 - registers the handlers
from wire import schemas
from wire.handlers import admin
from wire.registry import REGISTRY, ApiKey, ApiSpec, Registry

# What the server advertises; changing a range is a deliberate act (and needs its tests).
EXPECTED_VERSIONS = {
    ApiKey.PRODUCE: (3, 12), ApiKey.FETCH: (4, 12), ApiKey.LIST_OFFSETS: (1, 10),
    ApiKey.METADATA: (0, 12), ApiKey.OFFSET_COMMIT: (2, 9), ApiKey.OFFSET_FETCH: (1, 9),
    ApiKey.FIND_COORDINATOR: (0, 5), ApiKey.JOIN_GROUP: (0, 9), ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5), ApiKey.SYNC_GROUP: (0, 5), ApiKey.DESCRIBE_GROUPS: (0, 5),
    ApiKey.LIST_GROUPS: (0, 5), ApiKey.API_VERSIONS: (0, 4), ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.DELETE_TOPICS: (1, 6), ApiKey.INIT_PRODUCER_ID: (0, 5),
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 3), ApiKey.ADD_OFFSETS_TO_TXN: (0, 4),
    ApiKey.END_TXN: (0, 5), ApiKey.TXN_OFFSET_COMMIT: (0, 5), ApiKey.DESCRIBE_CONFIGS: (1, 4),
    ApiKey.DESCRIBE_PRODUCERS: (0, 0), ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 2),
}


def test_the_advertised_table_is_the_documented_one():
    assert {k: (lo, hi) for k, lo, hi in REGISTRY.versions()} == \
        {int(k): v for k, v in EXPECTED_VERSIONS.items()}


def test_the_client_minimums_are_inside_the_ranges():
    """librdkafka needs Produce >= 3 and Fetch >= 4 (MsgVersion 2), AddPartitionsToTxn,
    AddOffsetsToTxn and EndTxn v0, FindCoordinator v1 for transactions; aiokafka sends
    InitProducerId, TxnOffsetCommit, JoinGroup and SyncGroup v0 (shared/ROCKETMQ_AND_CLIENTS
    §4)."""
    for key, version in [(ApiKey.PRODUCE, 3), (ApiKey.FETCH, 4), (ApiKey.END_TXN, 0),
                         (ApiKey.ADD_PARTITIONS_TO_TXN, 0), (ApiKey.ADD_OFFSETS_TO_TXN, 0),
                         (ApiKey.INIT_PRODUCER_ID, 0), (ApiKey.TXN_OFFSET_COMMIT, 0),
                         (ApiKey.FIND_COORDINATOR, 1), (ApiKey.JOIN_GROUP, 0),
                         (ApiKey.SYNC_GROUP, 0), (ApiKey.OFFSET_COMMIT, 2),
                         (ApiKey.OFFSET_FETCH, 1), (ApiKey.METADATA, 0)]:
        assert REGISTRY.lookup(key, version) is not None, (key, version)


def test_lookup_refuses_versions_outside_the_range_and_unknown_keys():
    assert REGISTRY.lookup(ApiKey.PRODUCE, 2) is None
    assert REGISTRY.lookup(ApiKey.PRODUCE, 13) is None
    assert REGISTRY.lookup(57, 0) is None                      # a key nobody registered


def test_every_registered_version_has_kio_schemas():
    REGISTRY.verify()


def test_a_range_kio_has_no_schema_for_fails_verification():
    registry = Registry()

    async def handler(ctx, request):
        return None
    registry.register(ApiSpec(0, "PRODUCE", 0, 3, handler))      # Produce v0-2: gone
    with pytest.raises(schemas.UnknownApi):
        registry.verify()
    with pytest.raises(ValueError):
        registry.register(ApiSpec(0, "PRODUCE", 3, 3, handler))


def test_build_drops_fields_a_version_lacks_and_converts_plain_values():
    v0 = schemas.response_class(ApiKey.INIT_PRODUCER_ID, 0)
    built = schemas.build(v0, throttle_time=12, error_code=90, producer_id=7,
                          producer_epoch=3, not_a_field="ignored")
    assert built.error_code is ErrorCode.producer_fenced
    assert built.throttle_time == datetime.timedelta(milliseconds=12)
    assert (built.producer_id, built.producer_epoch) == (7, 3)
    produce = schemas.nested(ApiKey.PRODUCE, 3, "PartitionProduceResponse")
    part = schemas.build(produce, index=0, error_code=0, base_offset=5, log_append_time=-1,
                         log_start_offset=0, record_errors=[], error_message=None)
    assert round(part.log_append_time.timestamp() * 1000) == -1
    assert not schemas.has_field(produce, "log_start_offset")


def test_unknown_error_codes_become_unknown_server_error():
    assert schemas.error_code(30000) is ErrorCode.unknown_server_error


@pytest.mark.parametrize("key", [ApiKey.LIST_GROUPS, ApiKey.FETCH, ApiKey.END_TXN,
                                 ApiKey.DESCRIBE_GROUPS])
def test_blank_responses_carry_the_code_wherever_the_version_has_an_error_code(key):
    spec = REGISTRY.spec(key)
    for version in range(spec.min_version, spec.max_version + 1):
        response = schemas.blank(schemas.response_class(key, version), 87)
        if schemas.has_field(type(response), "error_code"):
            assert response.error_code == 87


def test_api_versions_lists_the_registry_and_finalizes_transaction_version_2():
    v3 = admin.api_versions_response(3)
    assert [(k.api_key, k.min_version, k.max_version) for k in v3.api_keys] == \
        REGISTRY.versions()
    assert [(f.name, f.max_version_level) for f in v3.finalized_features] == \
        [("transaction.version", 2)]
    assert v3.supported_features == ()                 # v0-v3 omit features with minimum 0
    v4 = admin.api_versions_response(4)
    assert [(f.name, f.min_version, f.max_version) for f in v4.supported_features] == \
        [("transaction.version", 0, 2)]
    unsupported = admin.api_versions_response(0, admin.UNSUPPORTED_VERSION)
    assert unsupported.error_code == 35 and len(unsupported.api_keys) == len(EXPECTED_VERSIONS)
