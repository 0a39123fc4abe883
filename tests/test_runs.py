"""A training run's directory: its path, its files as training writes them, and every reader of them."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import SMALL, run, synthetic_features

from mvnb import runs
from mvnb import train as train_module
from mvnb.fit import RANK_COLUMNS
from mvnb.train import load_heads, make_config


def test_run_dir_names_config_rotation_and_seed(tmp_path):
    assert (
        runs.run_dir(tmp_path, "corrected", 2, rotation=3)
        == tmp_path / "train" / "corrected" / "rotation3" / "seed2"
    )
    with pytest.raises(TypeError):
        runs.run_dir(tmp_path, "corrected", 3, 2)  # the rotation is a keyword: it cannot pass for the seed


def test_run_directory(tmp_path):
    data = synthetic_features()
    provenance = {"audio": {"encoder": "musicnn", "sha256": "ab"}, "video": {"encoder": "r2plus1d_18"}}
    summary = run(tmp_path, "paper_baseline", data=data, provenance=provenance)
    out = tmp_path / "paper_baseline"
    assert json.loads((out / "summary.json").read_text()) == summary == runs.read_summary(out)
    assert summary["provenance"] == provenance
    assert summary["test"]["main"]["chance"] == (summary["test"]["main"]["pool"] + 1) / 2
    assert summary["test"]["paper"] is None  # 18 test videos: too few for pools of 100
    config = runs.read_config(out)
    assert config["name"] == "paper_baseline" and config["seed"] == 0 and config["config"]["hidden"] == [32]
    assert config["rotation"] is None is summary["rotation"]  # a split of its own, not a fold rotation
    metrics = runs.read_history(out)
    assert {"loss", "val_loss", "tau", "lr", "skipped_batches", *(f"val_{c}" for c in RANK_COLUMNS)} <= set(
        metrics
    )
    assert len(metrics) == summary["epochs_run"]
    assert np.allclose(metrics["lr"], 0.01 * 0.95 ** np.arange(len(metrics)))
    assert sorted(p.name for p in out.iterdir()) == sorted(runs.RUN_FILES)
    ranks = runs.read_test_ranks(out)
    assert list(ranks.columns) == runs.TEST_RANK_COLUMNS
    assert (data[3][ranks["row"]] == "test").all() and len(ranks) == summary["test"]["main"]["n_segments"]
    assert ranks["rank_a2v"].median() == summary["test"]["main"]["median_rank_a2v"]
    assert set(summary["collapsed"]) == {"audio", "video"} and summary["input_norm"] == "none"
    state = torch.load(out / "heads.pt", weights_only=True)
    assert {"heads", "loss", "config"} <= set(state)
    embeddings = np.load(out / "embeddings.npz")
    n = len(data[2])
    assert embeddings["audio"].shape == embeddings["video"].shape == (n, 16)
    assert np.array_equal(embeddings["segment_index"], np.arange(n))
    heads, _, loaded = load_heads(out)
    assert loaded == make_config("paper_baseline", SMALL)
    with torch.no_grad():
        again = heads.audio(torch.from_numpy(data[0][:5, 0].astype(np.float32))).numpy()
    np.testing.assert_allclose(again, embeddings["audio"][:5], rtol=1e-5, atol=1e-6)


def tiny_store(monkeypatch, tmp_path, n_videos=40):
    """A segment store folder whose feature pair (`train.load_feature_pair`) is synthetic features
    with a manifest and two store metas, each with its manifest fingerprint; returns (store, features)."""
    audio, video, video_ids, split = synthetic_features(n_videos=n_videos)
    manifest = pd.DataFrame({"segment_id": [f"s{i}" for i in range(len(split))], "video_id": video_ids})
    metas = tuple(
        {"encoder": encoder, "manifest_fingerprint": f"{encoder}-print", "valid": np.ones(len(split), bool)}
        for encoder in ("musicnn", "r2plus1d_18")
    )
    monkeypatch.setattr(train_module, "load_feature_pair", lambda data_dir: (manifest, audio, video, *metas))
    monkeypatch.setattr(train_module, "manifest_split", lambda manifest, rotation: split)
    store = tmp_path / "store"
    store.mkdir()
    return store, (audio, video, video_ids, split)


def test_a_run_of_train_run_is_read_back_by_every_reader(tmp_path, monkeypatch):
    store, (audio, video, video_ids, split) = tiny_store(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    folder = runs.run_dir(tmp_path / "runs", "corrected", 1, rotation=2)
    overrides = [*SMALL, "max_epochs=2"]
    summary = train_module.train_run("store", "corrected", 1, overrides, folder, progress=False, rotation=2)
    assert sorted(p.name for p in folder.iterdir()) == sorted(runs.RUN_FILES)

    config = runs.read_config(folder)  # every resolved setting, the store as an absolute path
    assert config["config"] == json.loads(json.dumps(dataclasses.asdict(make_config("corrected", overrides))))
    assert (config["name"], config["rotation"], config["seed"]) == ("corrected", 2, 1)
    assert config["data_dir"] == str(store.resolve()) and config["profile"] is None
    assert config["fingerprints"] == {"audio": "musicnn-print", "video": "r2plus1d_18-print"}
    assert (config["n_segments"], config["views"], config["audio_dim"], config["video_dim"]) == (
        120,
        3,
        24,
        16,
    )
    assert runs.run_data_dir(folder) == store.resolve()

    assert runs.read_summary(folder) == summary
    assert list(runs.read_history(folder)["epoch"]) == list(range(summary["epochs_run"]))
    ranks = runs.read_test_ranks(folder)
    assert list(ranks.columns) == runs.TEST_RANK_COLUMNS and ranks["video_id"].map(type).eq(str).all()
    assert set(ranks["video_id"]) == set(video_ids[split == "test"])
    cl_audio, cl_video = runs.read_embeddings(folder, len(split))
    assert cl_audio.shape == cl_video.shape == (len(split), 16) and cl_audio.dtype == np.float32
    heads, _, loaded = load_heads(folder)
    saved = runs.read_heads(folder)
    assert saved["config"] == dataclasses.asdict(loaded) and (saved["audio_dim"], saved["video_dim"]) == (
        24,
        16,
    )
    with torch.no_grad():
        again = heads.video(torch.from_numpy(video[:4, 0].astype(np.float32))).numpy()
    np.testing.assert_allclose(again, cl_video[:4], rtol=1e-5, atol=1e-6)

    table = runs.load_summaries(tmp_path / "runs", ["corrected"], [2], [1])
    assert table.iloc[0][["config", "rotation", "seed", "learnable", "epochs_run"]].tolist() == [
        "corrected",
        2,
        1,
        True,
        summary["epochs_run"],
    ]
    assert table.iloc[0]["median_rank_a2v"] == summary["test"]["main"]["median_rank_a2v"]
    pooled = runs.load_test_ranks(tmp_path / "runs", ["corrected"], [2], [1])
    pd.testing.assert_frame_equal(pooled.drop(columns=["config", "rotation", "seed"]), ranks)


def test_train_run_records_the_profile_it_is_given(tmp_path, monkeypatch):
    store, _ = tiny_store(monkeypatch, tmp_path)
    folder = tmp_path / "run"
    overrides = [*SMALL, "max_epochs=1"]
    train_module.train_run(store, "corrected", 0, overrides, folder, progress=False, profile="quick")
    assert runs.read_config(folder)["profile"] == "quick"


def test_run_data_dir_is_the_recorded_store_or_a_clear_error(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(ValueError, match=f"the run {folder} does not record its segment store.*--data"):
        runs.run_data_dir(folder)  # no run at all
    folder.mkdir()
    runs.write_config(folder, {"name": "corrected", "config": {}})  # as `train.train` writes it
    with pytest.raises(ValueError, match=f"the run {folder} does not record its segment store.*--data"):
        runs.run_data_dir(folder)
    runs.write_config(folder, {"name": "corrected", "data_dir": str(tmp_path / "gone")})
    with pytest.raises(ValueError, match=f"the run {folder} was trained on .*gone, which is not here"):
        runs.run_data_dir(folder)
    (tmp_path / "gone").mkdir()
    assert runs.run_data_dir(folder) == tmp_path / "gone"


def test_embeddings_are_written_block_by_block_and_checked_when_read(tmp_path):
    audio, video = (
        np.arange(12, dtype=np.float32).reshape(4, 3),
        -np.arange(8, dtype=np.float64).reshape(4, 2),
    )
    with pytest.raises(FileNotFoundError, match="run notebook 03"):
        runs.read_embeddings(tmp_path, 4)
    path = runs.write_embeddings(tmp_path, 4, (3, [audio[:3], audio[3:]]), (2, [video]))
    assert path == tmp_path / runs.EMBEDDINGS_FILE
    got_audio, got_video = runs.read_embeddings(tmp_path, 4)
    np.testing.assert_array_equal(got_audio, audio)
    np.testing.assert_array_equal(got_video, video.astype(np.float32))
    assert got_video.dtype == np.float32 and np.load(path)["segment_index"].dtype == np.int64
    with pytest.raises(ValueError, match="holds 4 segments, not the manifest's 5 in order; retrain"):
        runs.read_embeddings(tmp_path, 5)


def test_clear_removes_only_an_older_runs_files(tmp_path):
    for name in (*runs.RUN_FILES, "notes.txt"):
        (tmp_path / name).write_text("old")
    runs.clear(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
