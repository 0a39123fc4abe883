"""mvnb.io: atomic writes, the JSON/CSV/torch writers and readers, file hashes, the formatters."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import torch

from mvnb import io
from mvnb.io import atomic_write


def test_atomic_write_replaces_only_a_finished_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    with atomic_write(path) as tmp:
        tmp.write_text("new")
        assert path.read_text() == "old"
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_json_round_trips_numpy_scalars_paths_and_devices_and_a_missing_file_reads_as_none(tmp_path):
    path = tmp_path / "sub" / "record.json"
    io.write_json(
        path, {"n": np.int64(3), "x": np.float32(0.5), "where": tmp_path, "on": torch.device("cpu")}
    )
    assert io.read_json(path) == {"n": 3, "x": 0.5, "where": str(tmp_path), "on": "cpu"}
    assert path.read_text(encoding="utf-8").startswith('{\n "n": 3')  # one-space indent
    assert io.read_json(tmp_path / "absent.json") is None
    (tmp_path / "broken.json").write_text("{")
    assert io.read_json(tmp_path / "broken.json") is None
    with pytest.raises(TypeError, match="cannot write object"):
        io.write_json(tmp_path / "bad.json", {"x": object()})


def test_write_text_leaves_a_file_that_already_holds_the_text_untouched(tmp_path):
    path = io.write_text(tmp_path / "a.md", "same ü\n")
    os.utime(path, (1_000_000, 1_000_000))
    io.write_text(path, "same ü\n")
    assert path.stat().st_mtime == 1_000_000
    io.write_text(path, "other\n")
    assert path.read_text(encoding="utf-8") == "other\n" and path.stat().st_mtime != 1_000_000


def test_csv_torch_and_sha256(tmp_path):
    table = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    path = io.write_csv(tmp_path / "t.csv", table)
    assert path.read_text() == "a,b\n1,x\n2,y\n"
    saved = io.save_torch(tmp_path / "w.pt", {"w": torch.arange(3)})
    assert torch.equal(torch.load(saved)["w"], torch.arange(3))
    assert io.sha256_file(path) == hashlib.sha256(b"a,b\n1,x\n2,y\n").hexdigest()


def test_format_interval_and_mean_sd():
    assert io.format_interval(17.04, 12.5, 21.0) == "17.0 [12.5, 21.0]"
    assert io.format_interval(float("nan"), 0, 1) == "—"
    assert io.format_interval(0.5, 0.25, 0.75, digits=3) == "0.500 [0.250, 0.750]"
    assert io.mean_sd(pd.Series([1.0, 3.0])) == "2.0 ± 1.4"
    assert io.mean_sd(pd.Series([2.0, np.nan])) == "2.0"
    assert io.mean_sd(pd.Series([np.nan])) == "-"
