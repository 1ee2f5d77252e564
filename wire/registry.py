"""The API registry: api key -> handler and the version range it really implements.

Handler modules declare themselves with the `handler` decorator:

    @handler(ApiKey.PRODUCE, 3, 12)
    async def produce(ctx, request): ...     # returns a kio response entity, or NO_RESPONSE

The range is what ApiVersions advertises, so it must be a range the handler serves in full
(every version in it has a kio schema: `verify()`, which the tests run; schemas are loaded on
first use otherwise). `REGISTRY.lookup(key, v)`
gives the spec or None (unknown key, or a version outside the range).

An optional `error` function builds the response for a request whose handler raised: it gets
(ctx, request body, error code). Without one, `schemas.blank` fills the response with defaults
and the code in every error_code field.

Thread-safety: registration happens at import time; afterwards the registry is read-only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Awaitable, Callable

from wire import schemas


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    INIT_PRODUCER_ID = 22
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_CONFIGS = 32
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66


class _NoResponse:
    """Marker: the request gets no response (Produce with acks=0)."""

    def __repr__(self) -> str:
        return "NO_RESPONSE"


NO_RESPONSE = _NoResponse()


class CloseConnection(Exception):
    """Raised by a handler: close the connection instead of answering (Kafka's answer to a
    failed Produce with acks=0, whose client reads no response)."""

Handler = Callable[..., Awaitable[object]]


@dataclass(frozen=True)
class ApiSpec:
    api_key: int
    name: str
    min_version: int
    max_version: int
    handler: Handler
    error: Callable | None = None

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


class Registry:
    def __init__(self) -> None:
        self._specs: dict[int, ApiSpec] = {}

    def register(self, spec: ApiSpec) -> None:
        if spec.api_key in self._specs:
            raise ValueError(f"api key {spec.api_key} registered twice")
        if spec.min_version > spec.max_version:
            raise ValueError(f"api key {spec.api_key}: empty range")
        self._specs[spec.api_key] = spec

    def verify(self) -> None:
        """Load the kio schemas of every registered version (raises UnknownApi for a gap).
        Not done at registration: the ~300 schema modules would cost seconds at start-up, so
        the server loads each on first use and the test suite calls this."""
        for spec in self._specs.values():
            for version in range(spec.min_version, spec.max_version + 1):
                schemas.request_class(spec.api_key, version)
                schemas.response_class(spec.api_key, version)

    def spec(self, api_key: int) -> ApiSpec | None:
        return self._specs.get(api_key)

    def lookup(self, api_key: int, version: int) -> ApiSpec | None:
        spec = self._specs.get(api_key)
        return spec if spec is not None and spec.supports(version) else None

    def versions(self) -> list[tuple[int, int, int]]:
        """[(api key, min, max)] in api-key order (what ApiVersions advertises)."""
        return [(s.api_key, s.min_version, s.max_version)
                for s in sorted(self._specs.values(), key=lambda s: s.api_key)]

    def specs(self) -> list[ApiSpec]:
        return sorted(self._specs.values(), key=lambda s: s.api_key)


REGISTRY = Registry()


def handler(api_key: ApiKey, min_version: int, max_version: int, *,
            error: Callable | None = None):
    """Register an async handler for api_key over [min_version, max_version]."""
    def register(fn: Handler) -> Handler:
        REGISTRY.register(ApiSpec(int(api_key), api_key.name, min_version, max_version, fn,
                                  error))
        return fn
    return register
