"""A structural pre-check of a request body before kio's native reader sees it.

Why: kio's reader (Rust) reserves memory for an array from the count the frame declares, before
reading a single item. A frame that declares 2**40 items makes that reservation fail, and Rust's
allocation-failure handler aborts the whole process: one malformed request would kill the
server and every client's connection with it. Kafka's own parser bounds the count by the bytes
left; this module does the same before kio is called.

What it checks: it walks the body with the request class's kio schema (the dataclass fields and
their `kafka_type`, the same information kio's reader uses), skipping every value, and refuses
  - an array whose declared count exceeds the bytes left in the frame (every item takes at least
    one byte, so no valid frame has one),
  - a string, bytes or records field, or a tagged field, whose length runs past the frame,
  - a frame that ends inside a fixed-size field.
It raises MalformedBody; framing turns that into MalformedRequest (the connection is closed).
Its varint and tagged-field readers also serve framing's request-header reader.
It does not check values (kio and the handlers do); it only makes sure that kio never sizes an
allocation from a number the frame could not back with bytes.

Format knowledge (KAFKA_FACTS.md, the protocol guide): non-flexible versions give arrays an
int32 count (-1 null), strings an int16 length (-1 null), bytes and records an int32 length;
flexible versions use an unsigned varint of count + 1 / length + 1 (0 null) and end every entity
with a tagged-field section (count, then tag, size, bytes for each).

Thread-safety: the per-class plans are built once and only read afterwards; building the same
plan twice in two threads is harmless (both are equal).
"""

from __future__ import annotations

import dataclasses
import struct

from kio.serial._introspect import EntityTupleField, PrimitiveTupleField, classify_field, \
    get_field_tag

FIXED_SIZES = {"int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2,
               "uint32": 4, "uint64": 8, "float64": 8, "bool": 1, "uuid": 16,
               "error_code": 2, "timedelta_i32": 4, "timedelta_i64": 8, "datetime_i64": 8}
INT16_LENGTH_TYPES = {"string"}            # non-flexible: int16 length
INT32_LENGTH_TYPES = {"bytes", "records"}  # non-flexible: int32 length
UVARINT_MAX_BYTES = 5                      # a u32 in base-128
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")

# One step of a plan: (kind, detail, is_array). kind "fixed" (detail: size), "string",
# "bytes", or "entity" (detail: the nested class).
_plans: dict[type, tuple[tuple, ...]] = {}


class MalformedBody(ValueError):
    """The body declares more than its frame holds."""


def check(cls: type, frame, position: int) -> None:
    """Walk `frame` from `position` as a body of `cls` (a kio request class); raise
    MalformedBody when a declared count or length runs past the frame."""
    _Walker(frame, bool(getattr(cls, "__flexible__", False))).entity(cls, position)


def read_uvarint(frame, pos: int) -> tuple[int, int]:
    """(value, next position) of an unsigned varint of at most UVARINT_MAX_BYTES bytes."""
    end = len(frame)
    if pos < end and frame[pos] < 0x80:
        return frame[pos], pos + 1                 # the common one-byte case
    value = shift = 0
    for _ in range(UVARINT_MAX_BYTES):
        if pos >= end:
            raise MalformedBody(f"frame ends inside a varint at {pos}")
        byte = frame[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise MalformedBody(f"varint longer than {UVARINT_MAX_BYTES} bytes at {pos}")


def skip_tagged_fields(frame, pos: int) -> int:
    """The position after a tagged-field section (count, then tag, size and bytes of each);
    every field is skipped, the count and sizes bounded by the frame."""
    end = len(frame)
    tags, pos = read_uvarint(frame, pos)
    if tags > end - pos:
        raise MalformedBody(f"{tags} tagged fields at {pos} with {end - pos} bytes left")
    for _ in range(tags):
        _tag, pos = read_uvarint(frame, pos)
        size, pos = read_uvarint(frame, pos)
        if pos + size > end:
            raise MalformedBody(f"a tagged field of {size} bytes at {pos} runs past the frame "
                                f"({end} bytes)")
        pos += size
    return pos


def _plan(cls: type) -> tuple[tuple, ...]:
    plan = _plans.get(cls)
    if plan is None:
        steps = []
        for field in dataclasses.fields(cls):
            if not field.init or get_field_tag(field) is not None:
                continue                       # constants; tagged fields live in the tag section
            kind = classify_field(field)
            is_array = isinstance(kind, (EntityTupleField, PrimitiveTupleField))
            if dataclasses.is_dataclass(kind.type_):
                steps.append(("entity", kind.type_, is_array))
                continue
            kafka_type = field.metadata["kafka_type"]
            if kafka_type in FIXED_SIZES:
                steps.append(("fixed", FIXED_SIZES[kafka_type], is_array))
            elif kafka_type in INT16_LENGTH_TYPES:
                steps.append(("string", None, is_array))
            elif kafka_type in INT32_LENGTH_TYPES:
                steps.append(("bytes", None, is_array))
            else:
                raise TypeError(f"{cls.__name__}.{field.name}: unknown kafka_type {kafka_type}")
        plan = _plans[cls] = tuple(steps)
    return plan


class _Walker:
    __slots__ = ("frame", "end", "flexible")

    def __init__(self, frame, flexible: bool):
        self.frame = frame
        self.end = len(frame)
        self.flexible = flexible

    def _need(self, pos: int, size: int, what: str) -> int:
        if size < 0 or pos + size > self.end:
            raise MalformedBody(f"{what} of {size} bytes at {pos} runs past the frame "
                                f"({self.end} bytes)")
        return pos + size

    def _length(self, pos: int, narrow: bool) -> tuple[int, int]:
        """(length or count, -1 for null; position after it)."""
        if self.flexible:
            value, pos = read_uvarint(self.frame, pos)
            return value - 1, pos
        if narrow:
            self._need(pos, 2, "an int16 length")
            return INT16.unpack_from(self.frame, pos)[0], pos + 2
        self._need(pos, 4, "an int32 length")
        return INT32.unpack_from(self.frame, pos)[0], pos + 4

    def _value(self, kind: str, detail, pos: int) -> int:
        if kind == "fixed":
            return self._need(pos, detail, "a fixed-size field")
        if kind == "entity":
            return self.entity(detail, pos)
        length, pos = self._length(pos, narrow=kind == "string")
        if length < -1:
            raise MalformedBody(f"negative length {length} at {pos}")
        return self._need(pos, max(length, 0), f"a {kind} value")

    def entity(self, cls: type, pos: int) -> int:
        for kind, detail, is_array in _plan(cls):
            if not is_array:
                pos = self._value(kind, detail, pos)
                continue
            count, pos = self._length(pos, narrow=False)
            if count < -1 or count > self.end - pos:
                raise MalformedBody(f"{cls.__name__}: an array of {count} items at {pos} with "
                                    f"{self.end - pos} bytes left")
            for _ in range(count):
                pos = self._value(kind, detail, pos)
        if self.flexible:
            pos = skip_tagged_fields(self.frame, pos)
        return pos
