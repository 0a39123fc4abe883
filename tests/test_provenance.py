"""The weights behind every result: named from the feature store, on every table, CSV and figure the
quick report writes (files without model output exempt)."""

import json
from fnmatch import fnmatch

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from mvnb import features, provenance

EXEMPT = ("preprocess_*.csv", "features_timing.csv", "report_timings.csv")  # no model output
NO_MODEL_OUTPUT_FIGURES = ("preprocess_*.png", "corpus_*.png")


def fake_store(root, video: dict, audio: dict | None = None):
    """A segment store with only the two meta.json files, holding the given provenance records."""
    records = {
        "video": video,
        "audio": audio or {"encoder": "musicnn", "weights": "MSD_musicnn", "sha256": "e" * 64},
    }
    for modality, record in records.items():
        folder = features.feature_dir(root, modality)
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"provenance": record}))
    return root


@pytest.mark.parametrize(
    "record, label",
    [
        (
            {"weights": "random", "seed": 0, "requested": "kinetics400", "fallback": "offline"},
            "R(2+1)D-18: random init (seed 0), not Kinetics-400",
        ),
        (
            {"weights": "random", "seed": 3, "requested": "random"},
            "R(2+1)D-18: random init (seed 3), not Kinetics-400",
        ),
        ({"weights": "kinetics400", "seed": None}, "R(2+1)D-18: Kinetics-400"),
        ({"weights": "file", "source": "/models/mine/r2p1d_ft.pth"}, "R(2+1)D-18: weights file r2p1d_ft.pth"),
    ],
)
def test_video_weights_in_words(tmp_path, record, label):
    weights = provenance.of_store(fake_store(tmp_path, {**record, "sha256": "ab" * 32}))
    assert weights.video == label and weights.audio == "musicnn: MSD_musicnn"
    assert weights.caption == f"{label} · musicnn: MSD_musicnn"
    assert weights.columns() == {
        "video_weights": label,
        "video_weights_sha256": "ab" * 8,
        "audio_weights": "musicnn: MSD_musicnn",
        "audio_weights_sha256": "e" * 16,
    }


def test_audio_may_come_from_another_store_and_missing_features_are_named(tmp_path):
    video_store = fake_store(tmp_path / "point", {"weights": "kinetics400"})
    audio_store = fake_store(
        tmp_path / "first",
        {"weights": "random", "seed": 0},
        {"encoder": "musicnn", "weights": "MTT_musicnn", "sha256": "f" * 64},
    )
    assert (
        provenance.of_store(video_store, audio_store).caption
        == "R(2+1)D-18: Kinetics-400 · musicnn: MTT_musicnn"
    )
    with pytest.raises(FileNotFoundError, match="no audio features in .*notebook 02"):
        provenance.of_store(tmp_path / "empty")


def test_tables_csvs_and_figures_carry_them(tmp_path):
    weights = provenance.Weights("R(2+1)D-18: Kinetics-400", "musicnn: MSD_musicnn", "1" * 16, "2" * 16)
    stamped = weights.stamp(pd.DataFrame({"x": [1, 2]}))
    assert (
        list(stamped.columns) == ["x", *provenance.COLUMNS]
        and (stamped["video_weights"] == weights.video).all()
    )
    assert weights.markdown("| a |\n|---|\n") == f"Weights: {weights.caption}\n\n| a |\n|---|\n"
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    path = weights.save_figure(fig, tmp_path / "deep" / "f.png")
    assert Image.open(path).text[provenance.PNG_KEY] == weights.caption
    assert [t.get_text() for t in fig.texts] == [f"weights: {weights.caption}"]
    plt.close(fig)


def test_every_table_and_csv_of_the_quick_report_names_the_video_weights(quick_report):
    """Every .md and .csv in the figures folder, but for the files that hold no model output."""
    figures = quick_report.root / "figures"
    weights = provenance.of_store(quick_report.root / "data" / "synth_quick" / "store")
    files = sorted(
        p
        for p in figures.iterdir()
        if p.suffix in (".md", ".csv") and not any(fnmatch(p.name, e) for e in EXEMPT)
    )
    assert any(p.name == "table2.md" for p in files), quick_report.log[-3000:]
    silent = []
    for path in files:
        if path.suffix == ".md":
            named = path.read_text(encoding="utf-8").startswith(f"Weights: {weights.caption}\n")
        else:
            table = pd.read_csv(path)
            named = (
                "video_weights" in table
                and len(table) > 0
                and (table["video_weights"] == weights.video).all()
            )
        if not named:
            silent.append(path.name)
    assert not silent, f"these files do not name the video weights ({weights.video}): {', '.join(silent)}"


def test_every_model_figure_of_the_quick_report_names_the_weights(quick_report):
    """Every PNG with model output carries the caption as footnote (and in its metadata); the UMAP page under
    its plot."""
    figures = quick_report.root / "figures"
    weights = provenance.of_store(quick_report.root / "data" / "synth_quick" / "store")
    pngs = sorted(
        p for p in figures.glob("*.png") if not any(fnmatch(p.name, e) for e in NO_MODEL_OUTPUT_FIGURES)
    )
    assert any(p.name == "training_curves.png" for p in pngs), quick_report.log[-3000:]
    silent = [p.name for p in pngs if Image.open(p).text.get(provenance.PNG_KEY) != weights.caption]
    assert not silent, f"these figures do not name the weights ({weights.caption}): {', '.join(silent)}"
    assert weights.video in (figures / "umap.html").read_text(encoding="utf-8")
