"""logstore.compression: Kafka's codec framings, levels, and bounded decompression.

Goal: every codec writes the stream Kafka's Java client writes and reads what Kafka reads, and
no input (corrupt, truncated, or a decompression bomb) gets past `decompress` as anything but
CorruptRecord. Method: exact header bytes from KAFKA_FACTS.md 1.7/1.9, round trips through our
own reader, and cross-checks against the independent readers and writers of the codec
libraries (stdlib gzip, liblz4's frame API, zstandard, raw snappy).
"""

from __future__ import annotations

import gzip
import os
import struct

import cramjam
import lz4.frame
import pytest
import zstandard

from logstore import compression as c
from logstore.errors import CorruptRecord, InvalidConfiguration, UnsupportedCompressionType

CODECS = [c.NONE, c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD]
COMPRESSED = [c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD]

SAMPLES = {
    "empty": b"",
    "one byte": b"a",
    "text": b"the quick brown fox jumps over the lazy dog " * 500,
    "random 100k": os.urandom(100_000),
    "mixed 300k": os.urandom(70_000) + b"y" * 200_000 + os.urandom(30_000),
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_codec_round_trips(codec, name):
    data = SAMPLES[name]
    packed = c.compress(codec, data)
    assert c.decompress(codec, packed, len(data)) == data


@pytest.mark.parametrize("codec", [c.GZIP, c.LZ4, c.ZSTD])
def test_every_level_in_range_round_trips(codec):
    low, high = c.LEVEL_RANGES[codec]
    levels = {low, high, c.LEVEL_DEFAULTS[codec]} if codec == c.ZSTD else range(low, high + 1)
    data = SAMPLES["mixed 300k"]
    for level in levels:
        assert c.decompress(codec, c.compress(codec, data, level), len(data)) == data, level


def test_names_and_ids_match_kafka():
    assert [c.codec_from_name(n) for n in ("none", "gzip", "snappy", "lz4", "zstd")] == CODECS
    assert [c.codec_name(i) for i in CODECS] == ["none", "gzip", "snappy", "lz4", "zstd"]
    with pytest.raises(InvalidConfiguration, match="brotli"):
        c.codec_from_name("brotli")
    with pytest.raises(UnsupportedCompressionType, match="5"):
        c.codec_name(5)
    with pytest.raises(UnsupportedCompressionType):
        c.compress(7, b"x")
    with pytest.raises(UnsupportedCompressionType):
        c.decompress(5, b"x", 10)


def test_levels_follow_kip_390():
    assert c.LEVEL_CONFIGS == {c.GZIP: "compression.gzip.level", c.LZ4: "compression.lz4.level",
                               c.ZSTD: "compression.zstd.level"}
    assert [c.default_level(x) for x in CODECS] == [None, -1, None, 9, 3]
    assert c.validate_level(c.GZIP, -1) == -1
    assert c.validate_level(c.ZSTD, -131072) == -131072
    assert c.validate_level(c.LZ4, None) == 9
    for codec, bad in [(c.GZIP, 0), (c.GZIP, 10), (c.LZ4, 0), (c.LZ4, 18), (c.ZSTD, 23),
                       (c.ZSTD, -131073)]:
        with pytest.raises(InvalidConfiguration, match=c.LEVEL_CONFIGS[codec]):
            c.validate_level(codec, bad)
    with pytest.raises(InvalidConfiguration, match="snappy takes no level"):
        c.compress(c.SNAPPY, b"x", level=1)


def test_gzip_is_an_rfc1952_stream_at_zlibs_default_level():
    data = SAMPLES["text"]
    packed = c.compress(c.GZIP, data)
    assert packed[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(packed) == data
    assert c.decompress(c.GZIP, gzip.compress(data, 9), len(data)) == data


def test_gzip_reads_concatenated_members_and_ignores_trailing_bytes_like_java():
    packed = gzip.compress(b"abc") + gzip.compress(b"def") + b"not a member"
    assert c.decompress(c.GZIP, packed, 6) == b"abcdef"


# ------------------------------------------------------------------------------------------------
# snappy: xerial framing


def test_snappy_writes_the_xerial_header():
    packed = c.compress(c.SNAPPY, b"")
    assert packed == b"\x82SNAPPY\x00" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x01"


def test_snappy_blocks_are_32k_raw_snappy_with_big_endian_lengths():
    data = SAMPLES["mixed 300k"]
    packed = c.compress(c.SNAPPY, data)
    pos, blocks = 16, []
    while pos < len(packed):
        (length,) = struct.unpack_from(">i", packed, pos)
        blocks.append(bytes(cramjam.snappy.decompress_raw(packed[pos + 4:pos + 4 + length])))
        pos += 4 + length
    assert pos == len(packed)
    assert [len(b) for b in blocks[:-1]] == [32 * 1024] * (len(blocks) - 1)
    assert b"".join(blocks) == data


def test_snappy_reads_a_raw_snappy_stream_without_header():
    data = SAMPLES["text"]
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert c.decompress(c.SNAPPY, raw, len(data)) == data


def test_snappy_reads_concatenated_xerial_streams():
    packed = c.compress(c.SNAPPY, b"first ") + c.compress(c.SNAPPY, b"second")
    assert c.decompress(c.SNAPPY, packed, 100) == b"first second"


def test_snappy_rejects_a_block_running_past_the_end():
    packed = c.compress(c.SNAPPY, SAMPLES["text"])
    with pytest.raises(CorruptRecord, match="snappy: block at byte 16 declares"):
        c.decompress(c.SNAPPY, packed[:-1], 10**6)


def test_snappy_rejects_an_empty_stream():
    with pytest.raises(CorruptRecord, match="snappy: empty"):
        c.decompress(c.SNAPPY, b"", 10)


# ------------------------------------------------------------------------------------------------
# lz4: Kafka's frame


def test_lz4_frame_header_is_kafkas():
    packed = c.compress(c.LZ4, b"")
    assert packed[:7] == bytes.fromhex("04224D18604082")
    assert packed == bytes.fromhex("04224D18604082") + b"\x00\x00\x00\x00"


def test_lz4_header_checksum_is_xxh32_of_flg_bd():
    assert c.xxh32(b"") == 0x02CC5D05
    assert c.xxh32(b"abc") == 0x32D153FF
    assert c.lz4_header_checksum(b"\x60\x40") == 0x82


def test_lz4_uses_64k_blocks_and_stores_incompressible_blocks_raw():
    data = os.urandom(65536) + b"z" * 1000
    packed = c.compress(c.LZ4, data)
    (first,) = struct.unpack_from("<I", packed, 7)
    assert first == 0x80000000 | 65536
    assert packed[11:11 + 65536] == data[:65536]
    (second,) = struct.unpack_from("<I", packed, 11 + 65536)
    assert second < 1000
    assert packed.endswith(b"\x00\x00\x00\x00")


@pytest.mark.parametrize("level", [1, 9, 12, 17])
def test_lz4_frames_are_read_by_liblz4(level):
    data = SAMPLES["mixed 300k"]
    assert lz4.frame.decompress(c.compress(c.LZ4, data, level)) == data


@pytest.mark.parametrize("options", [
    {"store_size": True},
    {"content_checksum": True},
    {"block_checksum": True},
    {"store_size": True, "content_checksum": True, "block_checksum": True,
     "block_size": lz4.frame.BLOCKSIZE_MAX4MB},
], ids=["content size", "content checksum", "block checksum", "all, 4 MiB blocks"])
def test_lz4_reads_frames_with_optional_fields(options):
    data = SAMPLES["mixed 300k"]
    frame = lz4.frame.compress(data, block_linked=False, **options)
    assert c.decompress(c.LZ4, frame, len(data)) == data


def test_lz4_rejects_a_wrong_header_checksum():
    frame = bytearray(c.compress(c.LZ4, b"payload"))
    frame[6] = 0x1A    # the broken (magic v0) checksum that also hashed the magic bytes
    with pytest.raises(CorruptRecord, match="frame descriptor corrupted"):
        c.decompress(c.LZ4, frame, 100)


def test_lz4_rejects_dependent_blocks():
    frame = lz4.frame.compress(SAMPLES["mixed 300k"], block_linked=True)
    assert frame[4] & 0x20 == 0
    with pytest.raises(CorruptRecord, match="dependent blocks"):
        c.decompress(c.LZ4, frame, 10**6)


def test_lz4_rejects_a_block_larger_than_the_frame_maximum():
    frame = bytearray(c.compress(c.LZ4, b""))
    frame[7:] = struct.pack("<I", 0x80000000 | 65537) + b"\0" * 65537 + b"\0\0\0\0"
    with pytest.raises(CorruptRecord, match="block size 65537 exceeded max: 65536"):
        c.decompress(c.LZ4, frame, 10**6)


def test_lz4_rejects_a_missing_end_mark():
    frame = c.compress(c.LZ4, SAMPLES["text"])
    with pytest.raises(CorruptRecord, match="ended prematurely"):
        c.decompress(c.LZ4, frame[:-4], 10**6)


# ------------------------------------------------------------------------------------------------
# zstd


def test_zstd_reads_frames_without_content_size_and_concatenated_frames():
    data = SAMPLES["mixed 300k"]
    streamed = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    assert zstandard.frame_content_size(streamed) == -1
    tail = zstandard.ZstdCompressor().compress(b"tail")
    assert c.decompress(c.ZSTD, streamed + tail, len(data) + 4) == data + b"tail"


def test_zstd_output_is_a_standard_frame():
    data = SAMPLES["text"]
    assert zstandard.ZstdDecompressor().decompress(c.compress(c.ZSTD, data)) == data


def test_zstd_rejects_a_truncated_frame():
    packed = c.compress(c.ZSTD, SAMPLES["random 100k"])
    with pytest.raises(CorruptRecord, match="zstd: frame truncated"):
        c.decompress(c.ZSTD, packed[:-100], 10**6)


# ------------------------------------------------------------------------------------------------
# Bounds and garbage


@pytest.mark.parametrize("codec", CODECS)
def test_output_one_byte_over_the_limit_is_corrupt(codec):
    data = SAMPLES["text"]
    packed = c.compress(codec, data)
    assert c.decompress(codec, packed, len(data)) == data
    with pytest.raises(CorruptRecord, match=f"{c.codec_name(codec)}: decompressed data exceeds"):
        c.decompress(codec, packed, len(data) - 1)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_decompression_bomb_is_stopped_near_the_limit(codec):
    limit = 1 << 20
    bomb = c.compress(codec, bytes(64 << 20))
    assert len(bomb) * 16 < 64 << 20
    with pytest.raises(CorruptRecord, match="exceeds the limit of 1048576 bytes") as info:
        c.decompress(codec, bomb, limit)
    seen = int(str(info.value).split("at least ")[1].split(" ")[0])
    assert seen < 64 << 20   # it stopped long before producing everything


@pytest.mark.parametrize("codec", COMPRESSED)
@pytest.mark.parametrize("garbage", [b"", b"\x07", b"garbage, not a compressed stream at all",
                                     os.urandom(4096)], ids=["empty", "one byte", "text", "random"])
def test_garbage_is_corrupt_record_naming_the_codec(codec, garbage):
    with pytest.raises(CorruptRecord, match=f"^{c.codec_name(codec)}: "):
        c.decompress(codec, garbage, 1 << 20)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_every_truncation_of_a_stream_is_corrupt_or_shorter(codec):
    data = SAMPLES["text"][:3000]
    packed = c.compress(codec, data)
    for cut in range(len(packed)):
        try:
            out = c.decompress(codec, packed[:cut], len(data))
        except CorruptRecord:
            continue
        assert out != data, cut
