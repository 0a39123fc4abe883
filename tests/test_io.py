"""mvnb.io: atomic writes."""

from __future__ import annotations

import pytest

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
