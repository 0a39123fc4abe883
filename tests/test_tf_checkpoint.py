"""The TF v2 checkpoint reader, against a checkpoint written here by an independent minimal writer."""

from __future__ import annotations

import importlib.util
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.encoders.tf_checkpoint import CheckpointError, crc32c, read_checkpoint, unmask_crc

TF_DTYPE_CODES = {
    np.dtype("<f4"): 1,
    np.dtype("<f8"): 2,
    np.dtype("<i4"): 3,
    np.dtype("u1"): 4,
    np.dtype("<i8"): 9,
    np.dtype("?"): 10,
    np.dtype("<f2"): 19,
}


# ---------------------------------------------------------------- an independent, minimal writer


def bitwise_crc32c(data: bytes) -> int:
    """CRC32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """LevelDB's CRC masking, as written in its source: rotate right by 15, add a constant."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes, fixed32: bool = False) -> bytes:
    """One protobuf field: varint, fixed32 or length-delimited."""
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if fixed32:
        return varint(number << 3 | 5) + struct.pack("<I", value)
    return varint(number << 3) + varint(value)


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """An SSTable block with prefix-compressed keys and a single restart point."""
    out, previous = bytearray(), b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(out) + struct.pack("<II", 0, 1)


def write_checkpoint(prefix: str, tensors: dict[str, np.ndarray]) -> None:
    """Write `tensors` as a one-shard TF v2 checkpoint: `{prefix}.index` and
    `{prefix}.data-00000-of-00001`."""
    data, entries = bytearray(), [(b"", field(1, 1) + field(3, field(1, 1)))]
    for name in sorted(tensors):
        array = np.array(tensors[name], order="C")
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        shape = b"".join(field(2, field(1, dim) if dim else b"") for dim in array.shape)
        entry = (
            field(1, TF_DTYPE_CODES[array.dtype])
            + field(2, shape)
            + field(4, len(data))
            + field(5, len(raw))
            + field(6, mask(bitwise_crc32c(raw)), fixed32=True)
        )
        entries.append((name.encode(), entry))
        data += raw
    table = bytearray()

    def append_block(contents: bytes) -> bytes:
        handle = varint(len(table)) + varint(len(contents))
        table.extend(contents + b"\x00" + struct.pack("<I", mask(bitwise_crc32c(contents + b"\x00"))))
        return handle

    data_handle = append_block(block(entries))
    meta_handle = append_block(block([]))
    index_handle = append_block(block([(entries[-1][0] + b"\xff", data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(prefix + ".index").write_bytes(bytes(table) + footer)
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))


# ---------------------------------------------------------------- checksums


def test_crc32c_matches_the_standard_check_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4 test vector


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=12000))
def test_crc32c_lanes_equal_the_bitwise_definition(data):
    assert crc32c(data) == bitwise_crc32c(data)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_unmask_inverts_mask(crc):
    assert unmask_crc(mask(crc)) == crc


# ---------------------------------------------------------------- reading

names = st.text(alphabet="abcdefgh_/0123456789", min_size=1, max_size=20)
arrays = st.tuples(
    st.sampled_from(sorted(TF_DTYPE_CODES, key=str)),
    st.lists(st.integers(0, 4), max_size=3),
    st.integers(0, 2**31 - 1),
)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(names, arrays, min_size=1, max_size=6))
def test_read_returns_what_was_written(tmp_path_factory, specs):
    rng_tensors = {}
    for name, (dtype, shape, seed) in specs.items():
        values = np.random.default_rng(seed).normal(size=shape) * 100
        rng_tensors[name] = values.astype(dtype)
    prefix = str(tmp_path_factory.mktemp("ckpt") / "model")
    write_checkpoint(prefix, rng_tensors)
    read = read_checkpoint(prefix)
    assert sorted(read) == sorted(rng_tensors)
    for name, expected in rng_tensors.items():
        assert read[name].dtype == expected.dtype and read[name].shape == expected.shape
        np.testing.assert_array_equal(read[name], expected)


@pytest.fixture
def small_checkpoint(tmp_path) -> str:
    prefix = str(tmp_path / "small")
    write_checkpoint(
        prefix,
        {
            "dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
            "dense/bias": np.ones(4, dtype=np.float32),
            "global_step": np.array(7, dtype=np.int64),
        },
    )
    return prefix


def test_missing_files_are_named(small_checkpoint):
    with pytest.raises(CheckpointError, match="index not found: .*nothing.index"):
        read_checkpoint(small_checkpoint.replace("small", "nothing"))
    Path(small_checkpoint + ".data-00000-of-00001").unlink()
    with pytest.raises(CheckpointError, match="data file not found: .*small.data-00000-of-00001"):
        read_checkpoint(small_checkpoint)


def test_corrupt_tensor_bytes_are_detected(small_checkpoint):
    data = Path(small_checkpoint + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch for tensor 'dense/bias'"):
        read_checkpoint(small_checkpoint)


def test_truncated_data_file_is_detected(small_checkpoint):
    data = Path(small_checkpoint + ".data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match="runs past the end of the file"):
        read_checkpoint(small_checkpoint)


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "empty"])
def test_damaged_index_is_detected(small_checkpoint, damage):
    index = Path(small_checkpoint + ".index")
    raw = bytearray(index.read_bytes())
    if damage == "flip":
        raw[3] ^= 0x40
    elif damage == "truncate":
        raw = raw[10:]
    elif damage == "magic":
        raw[-1] ^= 0xFF
    else:
        raw = bytearray()
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=str(index)):
        read_checkpoint(small_checkpoint)


# ---------------------------------------------------------------- the real musicnn checkpoint


def musicnn_prefix(name: str) -> str:
    spec = importlib.util.find_spec("musicnn")
    if spec is None:
        pytest.skip("musicnn is not installed (pip install --no-deps musicnn==0.1.0)")
    return str(Path(spec.origin).parent / name) + "/"


@pytest.mark.parametrize("name", ["MSD_musicnn", "MTT_musicnn"])
def test_reads_the_musicnn_checkpoint(name):
    tensors = read_checkpoint(musicnn_prefix(name))
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert tensors["conv2d_2/kernel"].shape == (128, 1, 1, 51)
    assert tensors["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert tensors["dense/kernel"].shape == (1506, 200)
    assert tensors["dense_1/kernel"].shape == (200, 50)
    assert tensors["batch_normalization_9/moving_variance"].shape == (1506,)
    weights = [v for k, v in tensors.items() if "Adam" not in k and "power" not in k]
    assert len(weights) == 11 * 4 + 10 * 2  # 11 batch norms, 8 convs + 2 dense layers
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in weights)


def test_a_flipped_bit_in_the_musicnn_weights_is_detected(tmp_path):
    source = Path(musicnn_prefix("MSD_musicnn"))
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(str(source) + "/" + suffix, tmp_path / f"copy{suffix}")
    data = tmp_path / "copy.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch for tensor"):
        read_checkpoint(tmp_path / "copy")
