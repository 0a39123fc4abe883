"""The store a run was trained on, as the run records it."""

import json

import pytest

from mvnb import intake


def test_run_data_dir_reads_the_run_or_asks_for_data(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ValueError, match="--data"):
        intake.run_data_dir(run)
    store = tmp_path / "store"
    (store / "features" / "musicnn").mkdir(parents=True)
    (store / "manifest.csv").write_text("segment_id\n")
    (run / "summary.json").write_text(
        json.dumps({"provenance": {"audio": {"path": str(store / "features" / "musicnn")}}})
    )
    assert intake.run_data_dir(run) == store
    (run / "config.json").write_text(json.dumps({"data_dir": "/somewhere/else"}))
    assert str(intake.run_data_dir(run)) == "/somewhere/else"
