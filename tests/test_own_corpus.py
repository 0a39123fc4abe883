"""Your own videos, end to end: a corpus folder holding only `videos/` and a minimal CSV (no synth.json,
no ground truth, no extra columns) runs the whole report at the quick profile, with labels and
without them; notebook 06, which needs a synthetic corpus, is skipped and says so."""

import json
import shutil

import pandas as pd
import pytest

from mvnb.report import run_report

MODEL_TABLES = ("table1.md", "table1_rotations.md", "browse_agreement.md", "umap.html")


def own_corpus(quick_report, root, labels: bool):
    """The quick report's synthetic mp4 files as a corpus of one's own: `videos/` and `metadata.csv`
    of `video_id,path` (and `genre,tags` with `labels`), nothing else."""
    synthetic = quick_report.root / "data" / "synth_quick"
    meta = pd.read_csv(synthetic / "metadata.csv")
    folder = root / "mine"
    (folder / "videos").mkdir(parents=True)
    for path in meta["path"]:
        shutil.copy(synthetic / path, folder / "videos")
    columns = ["video_id", "path", "genre", "tags"] if labels else ["video_id", "path"]
    meta[columns].to_csv(folder / "metadata.csv", index=False)
    return root


def outputs_text(runs):
    """Every output of every executed notebook, as one string."""
    cells = [c for p in sorted(runs.glob("*.ipynb")) for c in json.loads(p.read_text())["cells"]]
    return json.dumps([c.get("outputs", []) for c in cells])


@pytest.mark.parametrize("labels", [True, False], ids=["labelled", "unlabelled"])
def test_the_report_runs_on_a_corpus_of_ones_own(quick_report, tmp_path, labels):
    data = own_corpus(quick_report, tmp_path / "data", labels)
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    table = run_report("quick", None, {"data_root": str(data), "corpus": "mine"}, runs, figures).set_index(
        "notebook"
    )
    assert table.loc["06_heterogeneity_gap.ipynb", "status"] == "skipped"
    assert (table.drop(index="06_heterogeneity_gap.ipynb")["status"] == "ok").all(), table["status"]
    written = {p.name for p in figures.iterdir()}
    assert set(MODEL_TABLES) <= written, written
    assert not any(name.startswith("gap_") for name in written)
    store = data / "mine" / "store"
    assert len(pd.read_csv(store / "manifest.csv")) > 0 and not (data / "mine" / "synth.json").exists()
    text = outputs_text(runs)
    if labels:
        assert "table2.md" in written
        assert {"genre", "tags"} <= set(pd.read_csv(figures / "table2.csv")["task"])
    else:
        assert "table2.md" not in written and "probe_genre_confusion.png" not in written
        assert "no probe can run" in text  # the probes say so in one line, and skip
