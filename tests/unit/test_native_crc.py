"""CRC-32C in the C core (csrc/crc32c.c), through logstore._ffi.

Goal: both paths (slicing-by-8 software, SSE4.2 three-lane hardware) compute java.util.zip.CRC32C
for every length and alignment, continue a running value correctly, and the dispatcher behaves
when the hardware path is unavailable.
Method: published check values (RFC 3720 B.4 and the "123456789" check), the `crc32c` PyPI package
as an independent oracle at lengths around every lane boundary of the hardware path, and a
subprocess with LOGSTORE_CRC32C_SW=1 to exercise the no-SSE4.2 dispatch.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import crc32c as oracle
import numpy as np
import pytest

from logstore import _ffi, errors

CSRC = pathlib.Path(__file__).resolve().parents[2] / "csrc"

# (data, CRC-32C): the standard check value and RFC 3720 appendix B.4.
KNOWN_ANSWERS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (b"\x00" * 32, 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]

# The hardware path changes strategy at 8-byte words, 3 x 256-byte and 3 x 8192-byte lanes.
LANE_LENGTHS = sorted({*range(0, 80), 255, 256, 257, 767, 768, 769, 775, 1536, 1537,
                       24575, 24576, 24577, 24583, 49152 + 768 + 7, 3 * 24576 + 5})


def _paths():
    paths = [("dispatch", _ffi.crc32c), ("software", _ffi.crc32c_sw)]
    if _ffi.crc32c_hw_available():
        paths.append(("hardware", _ffi.crc32c_hw))
    return paths


PATHS = _paths()


def _data(n: int, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("name,fn", PATHS, ids=[p[0] for p in PATHS])
@pytest.mark.parametrize("data,expected", KNOWN_ANSWERS)
def test_known_answers(name, fn, data, expected):
    assert fn(data) == expected


@pytest.mark.parametrize("name,fn", PATHS, ids=[p[0] for p in PATHS])
def test_matches_oracle_at_every_lane_boundary_and_alignment(name, fn):
    blob = _data(max(LANE_LENGTHS) + 16)
    view = memoryview(blob)
    for length in LANE_LENGTHS:
        for align in range(8):
            chunk = view[align:align + length]
            assert fn(chunk) == oracle.crc32c(chunk), (length, align)


@pytest.mark.parametrize("name,fn", PATHS, ids=[p[0] for p in PATHS])
def test_running_value_continues_like_one_shot(name, fn):
    data = _data(3 * 24576 + 1000, seed=3)
    whole = fn(data)
    for cut in (0, 1, 7, 8, 767, 768, 24576, len(data) - 1, len(data)):
        assert fn(data[cut:], fn(data[:cut])) == whole, cut


def test_byte_by_byte_equals_one_shot():
    data = b"logstore keeps Kafka's bytes"
    crc = 0
    for i in range(len(data)):
        crc = _ffi.crc32c(data[i:i + 1], crc)
    assert crc == _ffi.crc32c(data) == oracle.crc32c(data)


def test_accepts_every_buffer_kind():
    data = b"123456789"
    for buf in (data, bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        assert _ffi.crc32c(buf) == 0xE3069283


def test_crc_detects_a_single_bit_flip():
    data = bytearray(_data(4096))
    good = _ffi.crc32c(data)
    for bit in (0, 7, 8 * 2048 + 3, 8 * 4095 + 7):
        data[bit // 8] ^= 1 << (bit % 8)
        assert _ffi.crc32c(data) != good
        data[bit // 8] ^= 1 << (bit % 8)


def test_hardware_path_reports_unsupported_when_unavailable():
    """In this process when the CPU lacks SSE4.2; otherwise test_forced_software_dispatch."""
    if _ffi.crc32c_hw_available():
        assert _ffi.crc32c_hw(b"123456789") == 0xE3069283
    else:
        with pytest.raises(errors.LogstoreError, match="not supported"):
            _ffi.crc32c_hw(b"123456789")
        assert _ffi.crc32c(b"123456789") == 0xE3069283


def test_forced_software_dispatch():
    """LOGSTORE_CRC32C_SW=1 stands in for a CPU without SSE4.2: the hardware entry point must
    refuse with LS_ERR_UNSUPPORTED and the dispatcher must still be right."""
    script = (
        "from logstore import _ffi, errors\n"
        "assert not _ffi.crc32c_hw_available()\n"
        "try:\n"
        "    _ffi.crc32c_hw(b'123456789')\n"
        "    raise SystemExit('crc32c_hw did not refuse')\n"
        "except errors.LogstoreError as exc:\n"
        "    assert 'not supported' in str(exc), exc\n"
        "data = bytes(range(256)) * 400\n"
        "import crc32c\n"
        "assert _ffi.crc32c(b'123456789') == 0xE3069283\n"
        "assert _ffi.crc32c(data) == crc32c.crc32c(data)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, LOGSTORE_CRC32C_SW="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_generated_tables_match_generator():
    """csrc/crc32c_tables.h is generated; it must be what the generator produces today."""
    spec = importlib.util.spec_from_file_location("gen_crc32c_tables",
                                                  CSRC / "gen_crc32c_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (CSRC / "crc32c_tables.h").read_text() == module.render()
