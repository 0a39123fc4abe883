"""The trainer on synthetic features: it learns what can be learned, and writes its run directory."""

import argparse
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from mvnb import standardise
from mvnb import train as train_module
from mvnb.corpus import fold_of, rotation_split
from mvnb.loss import TAU_MIN
from mvnb.paper import PAPER_TABLE1
from mvnb.train import CONFIGS, TrainConfig, load_heads, make_config, train

SMALL = ["hidden=32", "embedding_dim=16", "batch_size=64", "max_epochs=12"]


def synthetic_features(
    n_videos=120,
    segments=3,
    views=3,
    audio_dim=24,
    video_dim=16,
    noise=0.5,
    seed=0,
    shuffle=False,
    dtype=np.float16,
):
    """Video features are a noisy linear map of the audio ones; views add small jitter.

    shuffle: pair each audio segment with the video features of a random other segment.
    Splits by video: 70 % train, 15 % val, 15 % test.
    """
    rng = np.random.default_rng(seed)
    n = n_videos * segments
    base = rng.normal(size=(n, audio_dim))
    mapped = base @ rng.normal(size=(audio_dim, video_dim)) / np.sqrt(audio_dim)
    audio = base[:, None] + 0.3 * rng.normal(size=(n, views, audio_dim))
    video = mapped[:, None] + noise * rng.normal(size=(n, views, video_dim))
    if shuffle:
        video = video[rng.permutation(n)]
    video_ids = np.repeat([f"vid{i:04d}" for i in range(n_videos)], segments)
    cut = np.array([0.7, 0.85]) * n_videos
    split = np.where(
        np.arange(n_videos) < cut[0], "train", np.where(np.arange(n_videos) < cut[1], "val", "test")
    )
    return audio.astype(dtype), video.astype(dtype), video_ids, np.repeat(split, segments)


def realistic_scale(data, seed=0):
    """`synthetic_features` at the scale of frozen encoder outputs: each informative dimension
    offset and stretched, and many constant dimensions added (musicnn's pooled vector has a
    norm in the hundreds, most of its dimensions constant on a small corpus); audio norms
    about 500, video about 40."""
    audio, video, video_ids, split = data
    rng = np.random.default_rng(seed + 10)

    def inflate(x, n_constant, scale, offset):
        x = offset + scale * x.astype(np.float32)
        constant = np.broadcast_to(rng.uniform(0, 2 * offset, n_constant), (*x.shape[:2], n_constant))
        out = np.concatenate([x, constant], axis=2)
        return out[..., rng.permutation(out.shape[2])].astype(np.float16)

    return inflate(audio, 300, 10.0, 25.0), inflate(video, 100, 2.0, 3.0), video_ids, split


def run(tmp_path, name, overrides=SMALL, seed=0, data=None, **kwargs):
    data = synthetic_features() if data is None else data
    return train(
        *data, make_config(name, overrides), seed, tmp_path / name, name=name, progress=False, **kwargs
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_corrected_configuration_learns_retrieval(tmp_path, precision):
    summary = run(tmp_path, "corrected", [*SMALL, f"precision={precision}"])
    main = summary["test"]["main"]
    assert main["pool"] == 18 * 3 - 3 + 1
    assert main["median_rank_a2v"] <= 0.05 * main["pool"]
    assert main["median_rank_v2a"] <= 0.05 * main["pool"]


def test_shuffled_pairs_stay_at_chance(tmp_path):
    """Sample median of 54 ranks uniform over 1..52: sd ≈ 52 / (2√54) ≈ 3.5; allow 4 of them."""
    summary = run(tmp_path, "corrected", data=synthetic_features(shuffle=True))
    main = summary["test"]["main"]
    tolerance = 4 * main["pool"] / (2 * np.sqrt(main["n_segments"]))
    assert abs(main["median_rank_a2v"] - main["chance"]) <= tolerance
    assert abs(main["median_rank_v2a"] - main["chance"]) <= tolerance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_baseline_collapses_on_raw_features_of_realistic_scale_and_is_flagged(tmp_path, seed):
    summary = run(
        tmp_path, "paper_baseline", seed=seed, data=realistic_scale(synthetic_features(seed=seed), seed)
    )
    assert any(summary["collapsed"].values()), summary["median_pair_distance"]
    main = summary["test"]["main"]
    tolerance = 4 * main["pool"] / (2 * np.sqrt(main["n_segments"]))
    assert abs(main["median_rank_a2v"] - main["chance"]) <= tolerance


def test_standardised_inputs_let_the_paper_baseline_learn_on_realistic_scale(tmp_path):
    summary = run(
        tmp_path, "paper_std", [*SMALL, "max_epochs=30"], data=realistic_scale(synthetic_features())
    )
    main = summary["test"]["main"]
    assert not any(summary["collapsed"].values())
    assert max(main["median_rank_a2v"], main["median_rank_v2a"]) <= 0.10 * main["pool"]
    assert summary["input_norm"] == "standard"


@pytest.mark.parametrize("name", ["paper_baseline", "paper_std"])
def test_shuffled_pairs_of_realistic_scale_stay_at_chance(tmp_path, name):
    summary = run(tmp_path, name, data=realistic_scale(synthetic_features(shuffle=True)))
    main = summary["test"]["main"]
    tolerance = 4 * main["pool"] / (2 * np.sqrt(main["n_segments"]))
    assert abs(main["median_rank_a2v"] - main["chance"]) <= tolerance
    assert abs(main["median_rank_v2a"] - main["chance"]) <= tolerance


@pytest.mark.parametrize("name", ["paper_std", "single_head", "ae_init"])
def test_a_reloaded_run_standardises_exactly_as_training_did(tmp_path, name):
    """The statistics live in the heads' state: reloaded heads embed any segment, raw features
    in, as the trained heads did (embeddings.npz); without them the result would differ."""
    data = realistic_scale(synthetic_features(n_videos=40))
    run(tmp_path, name, [*SMALL, "max_epochs=2", "ae_epochs=1", "input_norm=standard"], data=data)
    heads, _, config = load_heads(tmp_path / name)
    assert config.input_norm == "standard"
    audio_norm, video_norm = heads.input_norms()
    train_rows = np.flatnonzero(data[3] == "train")
    expected = standardise.fit(data[0], train_rows)
    np.testing.assert_allclose(audio_norm.mean.numpy(), expected.mean, rtol=1e-6)
    np.testing.assert_allclose(audio_norm.scale.numpy(), expected.scale, rtol=1e-6)
    saved = np.load(tmp_path / name / "embeddings.npz")
    raw = {
        m: torch.from_numpy(x[:, 0].astype(np.float32)) for m, x in (("audio", data[0]), ("video", data[1]))
    }
    with torch.no_grad():
        for modality, head in (("audio", heads.audio), ("video", heads.video)):
            np.testing.assert_allclose(head(raw[modality]).numpy(), saved[modality], rtol=1e-5, atol=1e-5)
        if name == "single_head":  # the audio side is the standardised features themselves
            np.testing.assert_allclose(saved["audio"], expected.apply(data[0][:, 0]), rtol=1e-5, atol=1e-5)
        audio_norm.set_stats(standardise.Stats(np.zeros_like(expected.mean), np.ones_like(expected.scale)))
        assert not np.allclose(heads.audio(raw["audio"]).numpy(), saved["audio"], atol=1e-3)


def test_tau_init_sets_where_a_learnable_temperature_starts(tmp_path):
    summary = run(tmp_path, "learnable_tau", [*SMALL, "tau_init=0.2", "lr=0", "max_epochs=1"])
    assert summary["tau"] == pytest.approx(0.2)
    assert run(tmp_path / "fixed", "tau_0.3", [*SMALL, "tau_init=0.2", "max_epochs=1"])[
        "tau"
    ] == pytest.approx(0.3)


def test_paper_form_runs_a_learnable_temperature_to_its_clamp(tmp_path):
    """Paper loss + learnable τ: τ falls to the clamp while the validation loss falls below zero,
    where no cross-entropy can go; the CLIP form (corrected) keeps τ well above the clamp."""
    overrides = [*SMALL, "max_epochs=20", "batch_size=16", "lr=0.02", "patience=100"]
    paper = run(tmp_path, "learnable_tau", overrides)
    assert paper["tau"] == pytest.approx(TAU_MIN, rel=1e-3)
    assert pd.read_csv(tmp_path / "learnable_tau" / "metrics.csv")["val_loss"].iloc[-1] < 0
    assert run(tmp_path, "corrected", overrides)["tau"] > 4 * TAU_MIN


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    summary = run(tmp_path, "paper_baseline", [*SMALL, "max_epochs=60", "patience=2"])
    metrics = pd.read_csv(tmp_path / "paper_baseline" / "metrics.csv")
    assert summary["stopped_early"] and summary["epochs_run"] == summary["best_epoch"] + 3
    assert summary["best_val_loss"] == metrics["val_loss"].min() == metrics["val_loss"][summary["best_epoch"]]


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    losses = []
    for folder, seed in (("a", 0), ("b", 0), ("c", 1)):
        run(tmp_path / folder, "corrected", [*SMALL, "max_epochs=2"], seed=seed)
        losses.append(pd.read_csv(tmp_path / folder / "corrected" / "metrics.csv")["loss"].tolist())
    assert losses[0] == losses[1] != losses[2]


def test_memmap_float16_single_view_and_skipped_batches(tmp_path):
    """One view only (trained on view 0), read from memmaps; a video with many segments forces
    batches of one segment at the end of each epoch, which are skipped and counted."""
    audio, video, video_ids, split = synthetic_features(n_videos=40, views=1)
    video_ids[:30] = video_ids[0]  # ten segments of vid0000, all train
    stores = []
    for name, array in (("audio", audio), ("video", video)):
        store = np.lib.format.open_memmap(tmp_path / f"{name}.npy", "w+", np.float16, array.shape)
        store[:] = array
        stores.append(np.load(tmp_path / f"{name}.npy", mmap_mode="r"))
    summary = run(
        tmp_path,
        "paper_baseline",
        [*SMALL, "max_epochs=2", "batch_size=16"],
        data=(*stores, video_ids, split),
    )
    assert summary["skipped_batches"] > 0
    metrics = pd.read_csv(tmp_path / "paper_baseline" / "metrics.csv")
    assert metrics["skipped_batches"].sum() == summary["skipped_batches"]


@pytest.mark.parametrize("name", ["single_head", "ae_init", "four_layers", "emb512", "tau_0.3", "no_sigmoid"])
def test_every_configuration_runs(tmp_path, name):
    overrides = [o for o in SMALL if not (name == "emb512" and o.startswith("embedding_dim"))]
    summary = run(
        tmp_path, name, [*overrides, "max_epochs=2", "ae_epochs=2"], data=synthetic_features(n_videos=40)
    )
    embeddings = np.load(tmp_path / name / "embeddings.npz")
    expected = {"single_head": 24, "emb512": 512}.get(name, 16)
    assert embeddings["audio"].shape[1] == embeddings["video"].shape[1] == expected
    assert np.isfinite(summary["test"]["main"]["median_rank_a2v"])


def test_named_configurations():
    assert set(PAPER_TABLE1) <= set(CONFIGS)
    assert make_config("paper_baseline") == TrainConfig()
    corrected = make_config("corrected")
    assert (
        corrected.output,
        corrected.learnable_temperature,
        corrected.exclude_positive,
        corrected.input_norm,
    ) == ("none", True, False, "standard")
    assert make_config("paper_std") == TrainConfig(input_norm="standard")
    assert all(make_config(name).input_norm == "none" for name in PAPER_TABLE1)
    assert make_config("tau_0.3").temperature == 0.3


def test_overrides_are_coerced_to_field_types():
    config = make_config(
        "paper_baseline", ["hidden=512,512", "lr=1e-3", "ae_init=true", "max_epochs=5", "output=none"]
    )
    assert (config.hidden, config.lr, config.ae_init, config.max_epochs, config.output) == (
        (512, 512),
        1e-3,
        True,
        5,
        "none",
    )
    assert make_config("paper_baseline", {"hidden": 64}).hidden == (64,)
    assert dataclasses.replace(make_config("four_layers"), hidden=(1,)).hidden == (1,)


@pytest.mark.parametrize(
    "bad,match",
    [
        (("paper", []), "unknown configuration"),
        (("paper_baseline", ["learning_rate=1"]), "unknown training parameter"),
        (("paper_baseline", ["lr"]), "name=value"),
        (("paper_baseline", ["ae_init=maybe"]), "true or false"),
        (("paper_baseline", ["precision=fp16"]), "precision must be"),
        (("paper_baseline", ["lr=fast"]), "lr takes a number"),
        (("paper_baseline", ["output=tanh"]), "output must be"),
        (("paper_baseline", ["input_norm=minmax"]), "input_norm must be"),
    ],
)
def test_bad_configurations_are_clear_errors(bad, match):
    with pytest.raises((KeyError, ValueError), match=match):
        make_config(*bad)


def test_bad_inputs_are_clear_errors(tmp_path):
    audio, video, video_ids, split = synthetic_features(n_videos=20)
    config = make_config("paper_baseline", SMALL)
    with pytest.raises(ValueError, match="segments, views, dim"):
        train(audio[:, 0], video, video_ids, split, config, 0, tmp_path)
    with pytest.raises(ValueError, match="one video id"):
        train(audio, video, video_ids[:-1], split, config, 0, tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        train(audio, video, video_ids, np.where(split == "val", "valid", split), config, 0, tmp_path)
    with pytest.raises(ValueError, match="the split gives .* 0 validation"):
        train(audio, video, video_ids, np.where(split == "val", "train", split), config, 0, tmp_path)


@pytest.mark.parametrize("config", ["corrected", "paper_std"])
def test_cli_trains_on_the_feature_store(tmp_path, monkeypatch, capsys, config):
    """`python -m mvnb train` reads the store through load_feature_pair: the split of `--rotation` from the
    manifest's folds, failed segments left out, the stores' metadata as provenance."""
    audio, video, video_ids, _ = synthetic_features(n_videos=60)
    folds = np.array([fold_of(v) for v in video_ids])
    manifest = pd.DataFrame(
        {
            "segment_id": [f"s{i}" for i in range(len(folds))],
            "video_id": video_ids,
            "split": rotation_split(folds, 0),
            "fold": folds,
        }
    )
    split = rotation_split(folds, 2)  # tests fold 7, validates on fold 6
    valid = np.ones(len(split), dtype=bool)
    valid[:3] = False
    metas = (
        {"encoder": "musicnn", "valid": valid},
        {"encoder": "r2plus1d_18", "valid": np.ones(len(split), dtype=bool)},
    )
    monkeypatch.setattr(train_module, "load_feature_pair", lambda data_dir: (manifest, audio, video, *metas))
    parser = argparse.ArgumentParser()
    train_module.add_arguments(parser)
    args = parser.parse_args(
        [
            "--data",
            "store",
            "--config",
            config,
            "--rotation",
            "2",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "run"),
            *[x for o in SMALL for x in ("-p", o)],
            "-p",
            "max_epochs=2",
        ]
    )
    assert train_module.run(args) == 0
    assert f"train: {config} rotation 2 seed 1: test median rank" in capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["provenance"] == {"audio": {"encoder": "musicnn"}, "video": {"encoder": "r2plus1d_18"}}
    assert summary["n_invalid"] == 3 and summary["n_segments"]["train"] == (split[3:] == "train").sum()
    assert summary["n_videos"] == {
        s: len(set(video_ids[3:][split[3:] == s])) for s in ("train", "val", "test")
    }  # vid0000 failed
    assert set(pd.read_csv(tmp_path / "run" / "test_ranks.csv")["video_id"]) == set(video_ids[folds == 7])
    assert summary["name"] == config and summary["seed"] == 1 and summary["input_norm"] == "standard"
    assert summary["rotation"] == 2 == json.loads((tmp_path / "run" / "config.json").read_text())["rotation"]


def test_a_manifest_without_folds_is_refused_naming_the_fix(tmp_path, monkeypatch):
    audio, video, video_ids, split = synthetic_features(n_videos=20)
    manifest = pd.DataFrame({"video_id": video_ids, "split": split})
    metas = ({"valid": np.ones(len(split), dtype=bool)},) * 2
    monkeypatch.setattr(train_module, "load_feature_pair", lambda data_dir: (manifest, audio, video, *metas))
    with pytest.raises(ValueError, match="no fold column .* rerun preprocessing"):
        train_module.train_run("store", "corrected", 0, SMALL, tmp_path / "run", progress=False, rotation=1)


def test_cli_reports_bad_parameters_in_one_line(tmp_path):
    parser = argparse.ArgumentParser()
    train_module.add_arguments(parser)
    args = parser.parse_args(
        ["--data", str(tmp_path), "--out", str(tmp_path / "run"), "-p", "learning_rate=1"]
    )
    with pytest.raises(SystemExit, match="unknown training parameter"):
        train_module.run(args)


def test_cpu_threads_follow_the_batch_size_and_are_restored(tmp_path):
    assert train_module._cpu_threads(make_config("paper_baseline", {"batch_size": 64})) == 1
    assert train_module._cpu_threads(make_config("paper_baseline")) is None
    assert train_module._cpu_threads(make_config("paper_baseline", {"cpu_threads": 3})) == 3
    before = torch.get_num_threads()
    run(tmp_path, "corrected", [*SMALL, "max_epochs=1"])
    assert torch.get_num_threads() == before
