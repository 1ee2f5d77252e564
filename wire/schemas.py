"""kio glue: the request and response classes of an (api key, version), built and read.

Every protocol schema comes from kio (`kio.schema.<api>.v<N>.request/response`, generated from
Kafka's JSON message definitions); this module only finds them and makes them convenient for
handlers that serve a range of versions with one body of code:

  - `request_class(key, v)` / `response_class(key, v)` / `nested(key, v, name)`: the kio classes
    (lru-cached; `nested` looks a nested struct up in the response module of that version);
  - `build(cls, **values)`: an instance from the values the class has fields for; values the
    version does not have are dropped (a handler passes everything it knows), and plain Python
    values are converted to kio's field types (error codes to `ErrorCode`, milliseconds to
    `timedelta`, epoch milliseconds to `datetime`, lists to tuples);
  - `blank(cls, code)`: an instance with every field at its default or zero value and every
    `error_code` set to `code` (the last-resort error response of a request whose handler
    failed);
  - `read(cls, buf, offset)`: kio's entity reader; `write(obj, out)`: kio's entity writer;
  - `ms(value)`: milliseconds of a kio duration field.

Invariants: `build` never invents a field a version lacks and never drops a required field
silently (kio's dataclass raises TypeError for a missing one, which is a handler bug).

Thread-safety: stateless apart from the lru caches, which are thread-safe.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import uuid
from typing import Any

from kio import index
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

UTC = datetime.timezone.utc
UNKNOWN_SERVER_ERROR = -1
ZERO_UUID = uuid.UUID(int=0)
_ZEROS = {"int8": 0, "int16": 0, "int32": 0, "int64": 0, "uint8": 0, "uint16": 0,
          "uint32": 0, "uint64": 0, "float64": 0.0, "bool": False, "string": "",
          "bytes": b"", "records": None, "uuid": ZERO_UUID}


class UnknownApi(LookupError):
    """No kio schema for this (api key, version)."""


@functools.lru_cache(maxsize=None)
def request_class(api_key: int, version: int) -> type:
    try:
        return index.load_request_schema(api_key, version)
    except index.KioIndexError as exc:
        raise UnknownApi(f"no request schema for api key {api_key} v{version}") from exc


@functools.lru_cache(maxsize=None)
def response_class(api_key: int, version: int) -> type:
    try:
        return index.load_response_schema(api_key, version)
    except index.KioIndexError as exc:
        raise UnknownApi(f"no response schema for api key {api_key} v{version}") from exc


@functools.lru_cache(maxsize=None)
def nested(api_key: int, version: int, name: str) -> type:
    """A nested struct class of the response of (api_key, version), e.g. 'PartitionData'."""
    module = index.load_payload_module(api_key, version, EntityType.response)
    return getattr(module, name)


def error_code(code: int) -> ErrorCode:
    """kio's ErrorCode for a Kafka error code (UNKNOWN_SERVER_ERROR for codes kio lacks)."""
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode(UNKNOWN_SERVER_ERROR)


def _to_timedelta(value):
    return value if isinstance(value, datetime.timedelta) else \
        datetime.timedelta(milliseconds=value)


def _to_datetime(value):
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromtimestamp(value / 1000, tz=UTC)


def _to_error(value):
    return value if isinstance(value, ErrorCode) else error_code(value)


def _to_uuid(value):
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(value)


_CONVERTERS = {"error_code": _to_error, "timedelta_i32": _to_timedelta,
               "timedelta_i64": _to_timedelta, "datetime_i64": _to_datetime,
               "uuid": _to_uuid}


@functools.lru_cache(maxsize=None)
def _field_plan(cls: type) -> dict[str, Any]:
    """{field name: converter or None} for a kio class."""
    plan = {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        plan[f.name] = _CONVERTERS.get(kafka_type)
    return plan


def build(cls: type, **values):
    """An instance of kio class `cls` from the values it has fields for (see module doc)."""
    plan = _field_plan(cls)
    kwargs = {}
    for name, value in values.items():
        if name not in plan:
            continue
        convert = plan[name]
        if isinstance(value, list):
            value = tuple(value)
        elif convert is not None:
            value = convert(value)
        kwargs[name] = value
    return cls(**kwargs)


def has_field(cls: type, name: str) -> bool:
    return name in _field_plan(cls)


def blank(cls: type, code: int):
    """Every field at its default (or zero, empty, null) and every error code set to `code`."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        if kafka_type == "error_code":
            kwargs[f.name] = error_code(code)
        elif f.default is not dataclasses.MISSING:
            continue
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            continue
        elif kafka_type is None:
            inner = _entity_type(f.type)
            kwargs[f.name] = () if inner is None else blank(inner, code)
        elif kafka_type in ("timedelta_i32", "timedelta_i64"):
            kwargs[f.name] = datetime.timedelta(0)
        elif kafka_type == "datetime_i64":
            kwargs[f.name] = None if "None" in str(f.type) else _to_datetime(0)
        elif "tuple" in str(f.type):
            kwargs[f.name] = ()
        else:
            kwargs[f.name] = _ZEROS.get(kafka_type, 0)
    return cls(**kwargs)


def _entity_type(annotation) -> type | None:
    """The class of a nested-entity field (None for arrays of entities: left empty)."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    return None


def read(cls: type, buf, offset: int = 0):
    """(entity, bytes consumed) from a read-only buffer (kio's reader)."""
    return entity_reader(cls)(buf, offset)


def write(obj, out) -> None:
    """Serialize a kio entity to `out` (anything with write(bytes-like))."""
    entity_writer(type(obj))(out, obj)


def ms(value) -> int:
    """Milliseconds of a kio duration (timedelta) or a plain int."""
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    return int(value)
