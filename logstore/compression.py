"""Compression codecs of Kafka record batches, with Kafka's exact stream framings.

A compressed v2 batch holds its records region as one compressed stream (KAFKA_FACTS.md 1.1, 1.7).
The codec id sits in attribute bits 0-2. Each codec's framing is the one Kafka's Java client
writes and reads (`clients/.../common/compress/*`), so batches are byte-compatible both ways:

  id  name    stream format
  0   none    the records region as is
  1   gzip    RFC 1952 gzip stream (java.util.zip.GZIPOutputStream); members may be concatenated,
              bytes after the last member that do not start a new member are ignored (as Java's
              GZIPInputStream ignores them)
  2   snappy  xerial snappy-java SnappyOutputStream blocked format:
                header  82 'SNAPPY' 00 | int32 BE version (1) | int32 BE compatible version (1)
                blocks  int32 BE compressed length | raw snappy block of <= 32 KiB of input
              Readers also take a plain raw snappy block without the header (SnappyInputStream
              falls back to Snappy.uncompress) and headers repeated between blocks (concatenated
              streams)
  3   lz4     Kafka's LZ4 frame (Lz4BlockOutputStream, KAFKA_FACTS.md 1.9):
                magic 04 22 4D 18 | FLG 60 | BD 40 | HC 82
                blocks  uint32 LE size (high bit = stored uncompressed) | data, 64 KiB of input each
                end mark  uint32 0
              HC = (XXH32(FLG BD [content size]) >> 8) & 0xFF. Readers take frames with a content
              size, block checksums or a content checksum (skipped: the batch CRC-32C covers these
              bytes already), reject a wrong HC (Kafka does for magic >= 1; logstore only reads
              magic 2), dependent blocks, another version or reserved bits
  4   zstd    standard zstd frames (zstd-jni writes them streamed, without a content size);
              concatenated frames are read one after another

Levels follow Kafka 3.8 (KIP-390) and its config names `compression.gzip.level`,
`compression.lz4.level`, `compression.zstd.level`: gzip -1 (zlib's default, 6) or 1..9; lz4 1..17,
default 9, where 9 uses the fast compressor and any other level LZ4 HC at that level (lz4-java's
fastCompressor / highCompressor(level)); zstd -131072..22, default 3. Snappy has no level.

Decompression is bounded: `decompress(codec, data, max_size)` never returns, and never holds much
more than, `max_size` bytes. Larger output (a decompression bomb) and every codec error raise
`logstore.errors.CorruptRecord` naming the codec: bad input is an error, not a crash.

Thread-safety: stateless functions over immutable inputs; safe from any thread. The codec
libraries release the GIL while they work.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.block
import zstandard

from logstore.errors import CorruptRecord, InvalidConfiguration, UnsupportedCompressionType

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

CODEC_MASK = 0x07
CODEC_NAMES: dict[int, str] = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4",
                               ZSTD: "zstd"}
CODECS_BY_NAME: dict[str, int] = {name: codec for codec, name in CODEC_NAMES.items()}

# Kafka 3.8 levels (GzipCompression, Lz4Compression, ZstdCompression): (minimum, maximum, default).
GZIP_LEVEL_DEFAULT = -1
GZIP_LEVEL_MIN = 1
GZIP_LEVEL_MAX = 9
LZ4_LEVEL_DEFAULT = 9
LZ4_LEVEL_MIN = 1
LZ4_LEVEL_MAX = 17
ZSTD_LEVEL_DEFAULT = 3
ZSTD_LEVEL_MIN = -131072
ZSTD_LEVEL_MAX = 22
LEVEL_CONFIGS: dict[int, str] = {GZIP: "compression.gzip.level", LZ4: "compression.lz4.level",
                                 ZSTD: "compression.zstd.level"}
LEVEL_DEFAULTS: dict[int, int] = {GZIP: GZIP_LEVEL_DEFAULT, LZ4: LZ4_LEVEL_DEFAULT,
                                  ZSTD: ZSTD_LEVEL_DEFAULT}
LEVEL_RANGES: dict[int, tuple[int, int]] = {GZIP: (GZIP_LEVEL_MIN, GZIP_LEVEL_MAX),
                                            LZ4: (LZ4_LEVEL_MIN, LZ4_LEVEL_MAX),
                                            ZSTD: (ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX)}

# gzip: zlib window bits 16 + 15 select the RFC 1952 wrapper.
GZIP_WBITS = 31
GZIP_MAGIC = b"\x1f\x8b"

# snappy-java's SnappyCodec header and SnappyOutputStream's default block size.
SNAPPY_MAGIC = b"\x82SNAPPY\x00"
SNAPPY_VERSION = 1
SNAPPY_COMPATIBLE_VERSION = 1
SNAPPY_HEADER = SNAPPY_MAGIC + struct.pack(">ii", SNAPPY_VERSION, SNAPPY_COMPATIBLE_VERSION)
SNAPPY_HEADER_SIZE = len(SNAPPY_HEADER)
SNAPPY_BLOCK_SIZE = 32 * 1024
SNAPPY_CHUNK_LENGTH_SIZE = 4
SNAPPY_MAGIC_HEAD = SNAPPY_MAGIC[:SNAPPY_CHUNK_LENGTH_SIZE]

# Kafka's LZ4 frame (Lz4BlockOutputStream).
LZ4_MAGIC = b"\x04\x22\x4d\x18"
LZ4_FLG = 0x60
LZ4_BD = 0x40
LZ4_BLOCK_SIZE = 64 * 1024
LZ4_INCOMPRESSIBLE_MASK = 0x80000000
LZ4_FLG_VERSION_MASK = 0xC0
LZ4_FLG_VERSION_1 = 0x40
LZ4_FLG_BLOCK_INDEPENDENT = 0x20
LZ4_FLG_BLOCK_CHECKSUM = 0x10
LZ4_FLG_CONTENT_SIZE = 0x08
LZ4_FLG_CONTENT_CHECKSUM = 0x04
LZ4_FLG_RESERVED = 0x02
LZ4_FLG_DICT_ID = 0x01
LZ4_BD_SIZE_MASK = 0x70
LZ4_BD_RESERVED = 0x8F
LZ4_BD_SIZE_CODE_MIN = 4
LZ4_CONTENT_SIZE_BYTES = 8
LZ4_CHECKSUM_BYTES = 4
LZ4_BLOCK_HEADER = struct.Struct("<I")

# zstd: how much compressed input goes into one decompressor call. zstd's densest block (RLE)
# turns 4 input bytes into a 128 KiB block, so a feed of n bytes yields <= n * 32768 + 128 KiB;
# the feed shrinks with the remaining output budget to keep the overshoot near max_size.
ZSTD_BLOCK_SIZE_MAX = 128 * 1024
ZSTD_EXPANSION_MAX = ZSTD_BLOCK_SIZE_MAX // 4
ZSTD_FEED_MIN = 256
ZSTD_FEED_MAX = 256 * 1024

_INT32_BE = struct.Struct(">i")


# ------------------------------------------------------------------------------------------------
# Names and levels


def codec_from_name(name: str) -> int:
    """The codec id of a Kafka `compression.type` name (none, gzip, snappy, lz4, zstd)."""
    try:
        return CODECS_BY_NAME[name]
    except (KeyError, TypeError):
        expected = ", ".join(CODECS_BY_NAME)
        raise InvalidConfiguration(
            f"unknown compression type {name!r}: expected one of {expected}") from None


def codec_name(codec: int) -> str:
    """The Kafka name of a codec id."""
    try:
        return CODEC_NAMES[codec]
    except (KeyError, TypeError):
        raise UnsupportedCompressionType(f"unknown compression codec id {codec!r}") from None


def default_level(codec: int) -> int | None:
    """Kafka's default level of a codec, or None for codecs without levels."""
    codec_name(codec)
    return LEVEL_DEFAULTS.get(codec)


def validate_level(codec: int, level: int | None) -> int | None:
    """The level to use: `level` when it is in Kafka's range, the default when it is None.

    gzip also accepts -1 (zlib's default), as Kafka's GzipCompression.LevelValidator does.
    Raises InvalidConfiguration, naming the config key, for a level out of range or a level
    given to a codec that has none."""
    name = codec_name(codec)
    if level is None:
        return LEVEL_DEFAULTS.get(codec)
    if codec not in LEVEL_RANGES:
        raise InvalidConfiguration(f"compression type {name} takes no level (got {level!r})")
    key = LEVEL_CONFIGS[codec]
    if isinstance(level, bool) or not isinstance(level, int):
        raise InvalidConfiguration(f"{key}={level!r} is not an integer")
    low, high = LEVEL_RANGES[codec]
    if codec == GZIP and level == GZIP_LEVEL_DEFAULT:
        return level
    if not low <= level <= high:
        extra = f" or {GZIP_LEVEL_DEFAULT}" if codec == GZIP else ""
        raise InvalidConfiguration(f"{key}={level} is out of range [{low}, {high}]{extra}")
    return level


# ------------------------------------------------------------------------------------------------
# Public entry points


def compress(codec: int, data, level: int | None = None) -> bytes:
    """Compress `data` (any bytes-like object) into `codec`'s Kafka stream format."""
    level = validate_level(codec, level)
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        return zlib.compress(data, level, GZIP_WBITS)
    if codec == SNAPPY:
        return _snappy_compress(data)
    if codec == LZ4:
        return _lz4_compress(data, level)
    return zstandard.ZstdCompressor(level=level).compress(data)


def decompress(codec: int, data, max_size: int) -> bytes:
    """Decompress one `codec` stream; CorruptRecord if it is malformed or exceeds max_size."""
    name = codec_name(codec)
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0, got {max_size}")
    if codec == NONE:
        _check_size(name, len(data), max_size)
        return bytes(data)
    decoder = _DECODERS[codec]
    try:
        return decoder(memoryview(data).cast("B"), max_size)
    except CorruptRecord:
        raise
    except (zlib.error, cramjam.DecompressionError, lz4.block.LZ4BlockError,
            zstandard.ZstdError, ValueError, struct.error) as exc:
        raise CorruptRecord(f"{name}: corrupt compressed stream ({exc})") from exc


def _check_size(name: str, size: int, max_size: int) -> None:
    if size > max_size:
        raise CorruptRecord(
            f"{name}: decompressed data exceeds the limit of {max_size} bytes "
            f"(at least {size} bytes)")


# ------------------------------------------------------------------------------------------------
# gzip


def _gzip_decompress(data: memoryview, max_size: int) -> bytes:
    """Every gzip member in data, bounded; trailing bytes that start no member are ignored."""
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(GZIP_WBITS)
        # Asking for one byte more than allowed tells a bomb from a stream that fits exactly;
        # getting less than asked means the inflater ran out of input, so nothing is pending.
        out += inflater.decompress(rest, max_size + 1 - len(out))
        _check_size("gzip", len(out), max_size)
        if not inflater.eof:
            raise CorruptRecord(f"gzip: stream truncated after {len(out)} decompressed bytes")
        rest = inflater.unused_data
        if rest[:2] != GZIP_MAGIC:
            return bytes(out)


# ------------------------------------------------------------------------------------------------
# snappy (xerial framing)


def _snappy_compress(data) -> bytes:
    view = memoryview(data).cast("B")
    parts = [SNAPPY_HEADER]
    for start in range(0, len(view), SNAPPY_BLOCK_SIZE):
        block = cramjam.snappy.compress_raw(view[start:start + SNAPPY_BLOCK_SIZE])
        parts.append(_INT32_BE.pack(len(block)))
        parts.append(bytes(block))
    return b"".join(parts)


def _snappy_raw_block(block, out: bytearray, max_size: int) -> None:
    """Append one raw snappy block to out after checking its declared length against the budget."""
    declared = cramjam.snappy.decompress_raw_len(block)
    _check_size("snappy", len(out) + declared, max_size)
    out += cramjam.snappy.decompress_raw(block)


def _snappy_check_header(data: memoryview, pos: int) -> None:
    if len(data) - pos < SNAPPY_HEADER_SIZE or data[pos:pos + 8] != SNAPPY_MAGIC:
        raise CorruptRecord(f"snappy: invalid xerial stream header at byte {pos}")
    version, _compatible = struct.unpack_from(">ii", data, pos + len(SNAPPY_MAGIC))
    if version < SNAPPY_COMPATIBLE_VERSION:
        raise CorruptRecord(f"snappy: incompatible xerial stream version {version} at byte {pos}")


def _snappy_decompress(data: memoryview, max_size: int) -> bytes:
    if len(data) == 0:
        raise CorruptRecord("snappy: empty stream")
    out = bytearray()
    if len(data) < SNAPPY_HEADER_SIZE or data[:8] != SNAPPY_MAGIC:
        _snappy_raw_block(data, out, max_size)     # plain Snappy.compress output
        return bytes(out)
    _snappy_check_header(data, 0)
    pos = SNAPPY_HEADER_SIZE
    while pos < len(data):
        if len(data) - pos < SNAPPY_CHUNK_LENGTH_SIZE:
            raise CorruptRecord(f"snappy: truncated block length at byte {pos}")
        if data[pos:pos + SNAPPY_CHUNK_LENGTH_SIZE] == SNAPPY_MAGIC_HEAD:
            _snappy_check_header(data, pos)        # a concatenated stream
            pos += SNAPPY_HEADER_SIZE
            continue
        (length,) = _INT32_BE.unpack_from(data, pos)
        pos += SNAPPY_CHUNK_LENGTH_SIZE
        if length < 0 or length > len(data) - pos:
            raise CorruptRecord(
                f"snappy: block at byte {pos - 4} declares {length} bytes, "
                f"{len(data) - pos} remain")
        _snappy_raw_block(data[pos:pos + length], out, max_size)
        pos += length
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# lz4 (Kafka's frame)

_XXH_P1 = 2654435761
_XXH_P2 = 2246822519
_XXH_P3 = 3266489917
_XXH_P4 = 668265263
_XXH_P5 = 374761393
_U32 = 0xFFFFFFFF


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _U32


def xxh32(data, seed: int = 0) -> int:
    """XXH32 of data (pure Python; used for the few bytes of an LZ4 frame descriptor)."""
    data = bytes(data)
    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + _XXH_P1 + _XXH_P2) & _U32, (seed + _XXH_P2) & _U32, seed & _U32,
             (seed - _XXH_P1) & _U32]
        while i <= n - 16:
            for lane, word in enumerate(struct.unpack_from("<4I", data, i)):
                v[lane] = (_rotl32((v[lane] + word * _XXH_P2) & _U32, 13) * _XXH_P1) & _U32
            i += 16
        h = _rotl32(v[0], 1) + _rotl32(v[1], 7) + _rotl32(v[2], 12) + _rotl32(v[3], 18)
    else:
        h = seed + _XXH_P5
    h = (h + n) & _U32
    while i + 4 <= n:
        (word,) = struct.unpack_from("<I", data, i)
        h = (_rotl32((h + word * _XXH_P3) & _U32, 17) * _XXH_P4) & _U32
        i += 4
    while i < n:
        h = (_rotl32((h + data[i] * _XXH_P5) & _U32, 11) * _XXH_P1) & _U32
        i += 1
    h = ((h ^ (h >> 15)) * _XXH_P2) & _U32
    h = ((h ^ (h >> 13)) * _XXH_P3) & _U32
    return h ^ (h >> 16)


def lz4_header_checksum(descriptor) -> int:
    """The HC byte of an LZ4 frame: second byte of XXH32 over FLG, BD and the content size."""
    return (xxh32(descriptor) >> 8) & 0xFF


LZ4_FRAME_HEADER = LZ4_MAGIC + bytes([LZ4_FLG, LZ4_BD,
                                      lz4_header_checksum(bytes([LZ4_FLG, LZ4_BD]))])
LZ4_END_MARK = b"\x00\x00\x00\x00"


def _lz4_compress(data, level: int) -> bytes:
    view = memoryview(data).cast("B")
    if level == LZ4_LEVEL_DEFAULT:
        options = {"mode": "default"}
    else:
        options = {"mode": "high_compression", "compression": level}
    parts = [LZ4_FRAME_HEADER]
    for start in range(0, len(view), LZ4_BLOCK_SIZE):
        block = view[start:start + LZ4_BLOCK_SIZE]
        packed = lz4.block.compress(block, store_size=False, **options)
        if len(packed) >= len(block):                 # incompressible: store it as is
            parts.append(LZ4_BLOCK_HEADER.pack(len(block) | LZ4_INCOMPRESSIBLE_MASK))
            parts.append(bytes(block))
        else:
            parts.append(LZ4_BLOCK_HEADER.pack(len(packed)))
            parts.append(packed)
    parts.append(LZ4_END_MARK)
    return b"".join(parts)


def _lz4_read_header(data: memoryview) -> tuple[int, int, int]:
    """Check the frame descriptor as Lz4BlockInputStream.readHeader; (flg, max block, pos)."""
    if len(data) < len(LZ4_MAGIC) + 3:
        raise CorruptRecord("lz4: stream ended prematurely (no frame header)")
    if data[:4] != LZ4_MAGIC:
        raise CorruptRecord(f"lz4: invalid magic bytes {bytes(data[:4]).hex()}")
    flg, bd = data[4], data[5]
    if flg & LZ4_FLG_VERSION_MASK != LZ4_FLG_VERSION_1:
        raise CorruptRecord(f"lz4: unsupported frame version in FLG 0x{flg:02x}")
    if flg & (LZ4_FLG_RESERVED | LZ4_FLG_DICT_ID):
        raise CorruptRecord(f"lz4: reserved or dictionary bits set in FLG 0x{flg:02x}")
    if not flg & LZ4_FLG_BLOCK_INDEPENDENT:
        raise CorruptRecord("lz4: dependent blocks are unsupported (FLG block independence 0)")
    size_code = (bd & LZ4_BD_SIZE_MASK) >> 4
    if bd & LZ4_BD_RESERVED or size_code < LZ4_BD_SIZE_CODE_MIN:
        raise CorruptRecord(f"lz4: invalid BD byte 0x{bd:02x}")
    pos = 6
    if flg & LZ4_FLG_CONTENT_SIZE:
        pos += LZ4_CONTENT_SIZE_BYTES
    if len(data) < pos + 1:
        raise CorruptRecord("lz4: stream ended prematurely (frame descriptor)")
    expected = lz4_header_checksum(data[4:pos])
    if data[pos] != expected:
        raise CorruptRecord(
            f"lz4: stream frame descriptor corrupted (HC 0x{data[pos]:02x}, "
            f"expected 0x{expected:02x})")
    return flg, 1 << (2 * size_code + 8), pos + 1


def _lz4_decompress(data: memoryview, max_size: int) -> bytes:
    flg, block_max, pos = _lz4_read_header(data)
    block_checksum = LZ4_CHECKSUM_BYTES if flg & LZ4_FLG_BLOCK_CHECKSUM else 0
    out = bytearray()
    while True:
        if len(data) - pos < LZ4_BLOCK_HEADER.size:
            raise CorruptRecord(f"lz4: stream ended prematurely at byte {pos}")
        (word,) = LZ4_BLOCK_HEADER.unpack_from(data, pos)
        pos += LZ4_BLOCK_HEADER.size
        size = word & ~LZ4_INCOMPRESSIBLE_MASK
        if size == 0:
            if flg & LZ4_FLG_CONTENT_CHECKSUM and len(data) - pos < LZ4_CHECKSUM_BYTES:
                raise CorruptRecord("lz4: stream ended prematurely (content checksum)")
            return bytes(out)
        if size > block_max:
            raise CorruptRecord(f"lz4: block size {size} exceeded max: {block_max}")
        if len(data) - pos < size + block_checksum:
            raise CorruptRecord(f"lz4: stream ended prematurely in the block at byte {pos - 4}")
        block = data[pos:pos + size]
        if word & LZ4_INCOMPRESSIBLE_MASK:
            _check_size("lz4", len(out) + size, max_size)
            out += block
        else:
            out += lz4.block.decompress(block, uncompressed_size=block_max)
            _check_size("lz4", len(out), max_size)
        pos += size + block_checksum


# ------------------------------------------------------------------------------------------------
# zstd


def _zstd_decompress(data: memoryview, max_size: int) -> bytes:
    """Every zstd frame in data, fed in slices small enough to bound the output."""
    out = bytearray()
    pos = 0
    while True:
        decoder = zstandard.ZstdDecompressor().decompressobj()
        while not decoder.eof:
            if pos >= len(data):
                raise CorruptRecord(f"zstd: frame truncated after {len(out)} decompressed bytes")
            budget = max_size - len(out)
            feed = max(ZSTD_FEED_MIN, min(ZSTD_FEED_MAX, budget // ZSTD_EXPANSION_MAX))
            out += decoder.decompress(data[pos:pos + feed])
            _check_size("zstd", len(out), max_size)
            pos += feed
        pos = min(pos, len(data)) - len(decoder.unused_data)
        if pos >= len(data):
            return bytes(out)


_DECODERS = {GZIP: _gzip_decompress, SNAPPY: _snappy_decompress, LZ4: _lz4_decompress,
             ZSTD: _zstd_decompress}
