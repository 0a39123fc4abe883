"""Reading a TensorFlow v2 checkpoint into numpy arrays, without TensorFlow.

A v2 checkpoint ("tensor bundle") with prefix P is two files:

- ``P.index``: an SSTable (LevelDB table format) mapping each tensor name to a serialised
  ``BundleEntryProto``; the empty key holds a ``BundleHeaderProto``.
  - The file ends in a 48-byte footer: the metaindex and index block handles (varint
    offset, varint size each), zero padding, and the magic number 0xdb4775248b80fb57.
  - Each block is followed by a 5-byte trailer: a compression byte (0, none, is what TF
    writes) and the masked CRC32C of block + compression byte.
  - A block is a run of prefix-compressed entries (varint shared key length, varint
    unshared key length, varint value length, unshared key bytes, value bytes), then a
    uint32 array of restart offsets and their uint32 count.
  - The index block's values are handles of the data blocks, whose entries are the tensors.
- ``P.data-00000-of-00001`` (one file per shard): the tensors' raw little-endian bytes,
  one after another.

``BundleEntryProto`` fields used here: 1 dtype (TF ``DataType`` enum), 2 shape
(``TensorShapeProto``: repeated field 2 ``Dim`` with field 1 size), 3 shard id, 4 offset,
5 size in bytes, 6 masked CRC32C of the bytes, 7 slices (partitioned variables, refused).
``BundleHeaderProto``: 1 number of shards, 2 endianness (0 little, 1 big).

Every block and every tensor is checked against its CRC32C, so a corrupt or truncated file
raises ``CheckpointError`` naming the file, never returns wrong numbers.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5

# TF DataType enum -> numpy dtype (little-endian). Strings and quantised types are refused.
DTYPES = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or uses a feature this reader does not support."""


def _crc32c_table() -> np.ndarray:
    """The byte-wise lookup table of reflected CRC32C (Castagnoli, polynomial 0x82F63B78), `(256,)` uint32."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


CRC_TABLE = _crc32c_table()
CRC_TABLE_LIST = CRC_TABLE.tolist()


def _crc_register(register: int, data: bytes) -> int:
    """Feed `data` into a raw CRC32C register (no initial or final xor), byte by byte."""
    table = CRC_TABLE_LIST
    for byte in data:
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def _zero_feed_tables(n_bytes: int) -> list[list[int]]:
    """Byte tables of the linear map "feed `n_bytes` zero bytes into the register".

    The CRC register update is linear over GF(2), so the map is fixed by the images of the 32
    basis registers; the result is 4 tables of 256 entries, one per register byte.
    """
    basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
    for _ in range(n_bytes):
        basis = CRC_TABLE[basis & 0xFF] ^ (basis >> 8)
    columns = basis.tolist()
    tables = []
    for byte_index in range(4):
        table = [0] * 256
        for value in range(1, 256):
            low = value & -value
            table[value] = table[value ^ low] ^ columns[8 * byte_index + low.bit_length() - 1]
        tables.append(table)
    return tables


def crc32c(data: bytes) -> int:
    """CRC32C of `data` (init and final xor 0xFFFFFFFF), as TF and LevelDB compute it.

    Long inputs are split into equal lanes whose registers advance together in numpy; the lane
    results are then chained with the zero-feed map, since crc(A‖B) = feed(crc(A), |B| zeros) ^ crc₀(B).
    """
    n = len(data)
    lanes = int(np.sqrt(n))
    if lanes < 64:
        return _crc_register(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    lane_bytes = n // lanes
    body = np.frombuffer(data, dtype=np.uint8, count=lanes * lane_bytes)
    columns = np.ascontiguousarray(body.reshape(lanes, lane_bytes).T).astype(np.uint32)
    registers = np.zeros(lanes, dtype=np.uint32)
    for column in columns:
        registers = CRC_TABLE[(registers ^ column) & 0xFF] ^ (registers >> 8)
    feed = _zero_feed_tables(lane_bytes)
    register = 0xFFFFFFFF
    for lane_register in registers.tolist():
        shifted = (
            feed[0][register & 0xFF]
            ^ feed[1][(register >> 8) & 0xFF]
            ^ feed[2][(register >> 16) & 0xFF]
            ^ feed[3][register >> 24]
        )
        register = shifted ^ lane_register
    return _crc_register(register, data[lanes * lane_bytes :]) ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Undo LevelDB/TF CRC masking: masked = rotate_right(crc, 15) + 0xa282ead8 (mod 2³²)."""
    rotated = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    """Decode a protobuf/LevelDB varint at `position`; returns (value, next position)."""
    value = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise CheckpointError("truncated varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _proto_fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """Decode a protobuf message into `(field number, value)` pairs, in order.

    Varint and fixed-width fields give ints; length-delimited fields give their bytes.
    """
    fields, position = [], 0
    while position < len(message):
        key, position = _varint(message, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(message, position)
        elif wire_type == 1:
            value, position = int.from_bytes(message[position : position + 8], "little"), position + 8
        elif wire_type == 5:
            value, position = int.from_bytes(message[position : position + 4], "little"), position + 4
        elif wire_type == 2:
            length, position = _varint(message, position)
            value, position = message[position : position + length], position + length
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire_type}")
        if position > len(message):
            raise CheckpointError("truncated protobuf message")
        fields.append((number, value))
    return fields


def _read_block(table: bytes, handle: tuple[int, int], name: str) -> bytes:
    """The CRC-checked contents of the SSTable block at `handle` (offset, size)."""
    offset, size = handle
    end = offset + size + BLOCK_TRAILER_BYTES
    if end > len(table):
        raise CheckpointError(f"{name}: block at byte {offset} runs past the end of the file (truncated?)")
    contents, compression = table[offset : offset + size], table[offset + size]
    (stored,) = struct.unpack("<I", table[offset + size + 1 : end])
    if crc32c(table[offset : offset + size + 1]) != unmask_crc(stored):
        raise CheckpointError(f"{name}: checksum mismatch in block at byte {offset} (corrupt file)")
    if compression != 0:
        raise CheckpointError(f"{name}: compressed SSTable blocks (type {compression}) are not supported")
    return contents


def _block_entries(block: bytes, name: str) -> list[tuple[bytes, bytes]]:
    """The `(key, value)` entries of one SSTable block, undoing key prefix compression."""
    if len(block) < 4:
        raise CheckpointError(f"{name}: block too short")
    (n_restarts,) = struct.unpack("<I", block[-4:])
    limit = len(block) - 4 * (n_restarts + 1)
    if limit < 0:
        raise CheckpointError(f"{name}: bad restart count {n_restarts}")
    entries, key, position = [], b"", 0
    while position < limit:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        entries.append((key, block[position : position + value_length]))
        position += value_length
    if position != limit:
        raise CheckpointError(f"{name}: block entries overrun")
    return entries


def _index_entries(index_path: Path) -> list[tuple[str, bytes]]:
    """All `(tensor name, BundleEntryProto bytes)` of an index file; the header has name ''."""
    table = index_path.read_bytes()
    name = str(index_path)
    if len(table) < FOOTER_BYTES:
        raise CheckpointError(f"{name}: too short to be a checkpoint index ({len(table)} bytes)")
    footer = table[-FOOTER_BYTES:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise CheckpointError(f"{name}: not a TensorFlow v2 checkpoint index (bad magic number)")
    _, position = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle
    index_offset, position = _varint(footer, position)
    index_size, _ = _varint(footer, position)
    entries = []
    for _, handle in _block_entries(_read_block(table, (index_offset, index_size), name), name):
        offset, position = _varint(handle, 0)
        size, _ = _varint(handle, position)
        for key, value in _block_entries(_read_block(table, (offset, size), name), name):
            entries.append((key.decode("utf-8"), value))
    return entries


def _entry_spec(entry: bytes, tensor: str) -> dict:
    """Decode a BundleEntryProto into dtype, shape, shard, offset, size and crc."""
    spec = {"dtype": 1, "shape": (), "shard": 0, "offset": 0, "size": 0, "crc": None}
    for number, value in _proto_fields(entry):
        if number == 1:
            spec["dtype"] = value
        elif number == 2:
            dims = [dict(_proto_fields(dim)).get(1, 0) for field, dim in _proto_fields(value) if field == 2]
            spec["shape"] = tuple(dims)
        elif number in (3, 4, 5):
            spec[{3: "shard", 4: "offset", 5: "size"}[number]] = value
        elif number == 6:
            spec["crc"] = value
        elif number == 7:
            raise CheckpointError(f"tensor {tensor!r} is partitioned into slices, which is not supported")
    if spec["dtype"] not in DTYPES:
        raise CheckpointError(
            f"tensor {tensor!r} has TF dtype {spec['dtype']}, which this reader does not support"
        )
    return spec


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """All tensors of the TF v2 checkpoint with `prefix`, as numpy arrays keyed by variable name.

    `prefix` is the path without suffix: files are `{prefix}.index` and
    `{prefix}.data-SSSSS-of-NNNNN`. Shapes are TF's (a conv2d kernel is
    `(height, width, in, out)`, a dense kernel `(in, out)`). Raises CheckpointError for a
    missing, truncated or corrupt file.
    """
    prefix = str(prefix)
    index_path = Path(prefix + ".index")
    if not index_path.is_file():
        raise CheckpointError(f"checkpoint index not found: {index_path}")
    entries = _index_entries(index_path)
    header = dict(_proto_fields(dict(entries).get("", b"")))
    n_shards = header.get(1, 1)
    if header.get(2, 0) != 0:
        raise CheckpointError(f"{index_path}: big-endian checkpoints are not supported")
    shards: dict[int, bytes] = {}
    tensors = {}
    for tensor, entry in entries:
        if not tensor:
            continue
        spec = _entry_spec(entry, tensor)
        data_path = Path(f"{prefix}.data-{spec['shard']:05d}-of-{n_shards:05d}")
        if spec["shard"] not in shards:
            if not data_path.is_file():
                raise CheckpointError(f"checkpoint data file not found: {data_path}")
            shards[spec["shard"]] = data_path.read_bytes()
        tensors[tensor] = _tensor(shards[spec["shard"]], spec, tensor, data_path)
    return tensors


def _tensor(shard: bytes, spec: dict, tensor: str, data_path: Path) -> np.ndarray:
    """One tensor cut out of its shard's bytes, checked for size and CRC32C."""
    dtype = DTYPES[spec["dtype"]]
    expected = dtype.itemsize * int(np.prod(spec["shape"], dtype=np.int64))
    start, size = spec["offset"], spec["size"]
    if size != expected:
        raise CheckpointError(f"{data_path}: tensor {tensor!r} has {size} bytes, expected {expected}")
    if start + size > len(shard):
        raise CheckpointError(f"{data_path}: tensor {tensor!r} runs past the end of the file (truncated?)")
    raw = shard[start : start + size]
    if spec["crc"] is not None and crc32c(raw) != unmask_crc(spec["crc"]):
        raise CheckpointError(f"{data_path}: checksum mismatch for tensor {tensor!r} (corrupt file)")
    return np.frombuffer(raw, dtype=dtype).reshape(spec["shape"]).copy()
