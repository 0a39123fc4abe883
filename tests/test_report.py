"""The report runner: parameters reach the notebooks that declare them, and a failure stops the run
naming the notebook and the cell."""

import nbformat
import pytest

from mvnb import report
from mvnb.config import profile_params


def write_notebook(path, parameters: str, body: str):
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runs_in_order_passes_declared_parameters_and_stops_at_first_failure(tmp_path, monkeypatch):
    books = tmp_path / "notebooks"
    books.mkdir()
    write_notebook(
        books / "00_ok.ipynb",
        "profile = 'x'\nseeds = []",
        "import pathlib\npathlib.Path(runs_dir_marker).write_text(f'{profile} {seeds}')".replace(
            "runs_dir_marker", repr(str(tmp_path / "seen.txt"))
        ),
    )
    write_notebook(books / "01_fails.ipynb", "profile = 'x'", "x = 1\nraise RuntimeError('boom')")
    write_notebook(books / "02_never.ipynb", "profile = 'x'", "pass")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", books)
    table = report.run_report(
        "quick",
        out=tmp_path / "runs",
        figures=tmp_path / "figures",
        overrides={"data_root": str(tmp_path / "data")},
    )
    assert list(table["notebook"]) == ["00_ok.ipynb", "01_fails.ipynb"]
    assert table["status"][0] == "ok"
    assert (
        "cell 2 of the executed copy (starting 'x = 1')" in table["status"][1]
    )  # after papermill's injected cell
    assert "RuntimeError: boom" in table["status"][1]
    assert (tmp_path / "seen.txt").read_text() == f"quick {profile_params('quick')['seeds']}"
    assert (tmp_path / "runs" / "timings.csv").exists()
    assert (tmp_path / "figures" / "report_timings.csv").read_text() == (
        tmp_path / "runs" / "timings.csv"
    ).read_text()


def test_only_selects_by_number_and_rejects_unknown(monkeypatch, tmp_path):
    for name in ("00_a.ipynb", "01_b.ipynb", "02_c.ipynb"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", tmp_path)
    assert [p.name for p in report.report_notebooks(["02", "00"])] == ["00_a.ipynb", "02_c.ipynb"]
    with pytest.raises(SystemExit, match="07"):
        report.report_notebooks(["07"])


def own_corpus(root, n_videos: int, duration_s: float | None = None):
    """A metadata.csv of `n_videos` videos (no files: the size check reads only the table)."""
    import pandas as pd

    folder = root / "mine"
    folder.mkdir(parents=True)
    table = pd.DataFrame(
        {"video_id": [f"clip{i}" for i in range(n_videos)], "path": "x.mp4", "genre": "rock"}
    )
    if duration_s is not None:
        table["duration_s"] = duration_s
    table.to_csv(folder / "metadata.csv", index=False)


def report_on_own_corpus(root, profile: str):
    """`python -m mvnb report --profile PROFILE` on the corpus `root/mine`, writing under `root/runs`."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "mvnb", "report", "--profile", profile, "--out", str(root / "runs")]
    params = ["-p", f"data_root={root}", "-p", "corpus=mine"]
    return subprocess.run(command + params, capture_output=True, text=True)


def test_paper_profile_refuses_a_corpus_too_small_for_its_sizes_before_running_anything(tmp_path):
    own_corpus(tmp_path, 300, duration_s=20.0)
    proc = report_on_own_corpus(tmp_path, "paper")
    assert proc.returncode != 0
    message = proc.stderr
    assert "profile paper needs the paper's sizes" in message
    assert "fewer than batch_size = 1000" in message and "300 videos" in message
    assert "300 video(s) are shorter than the 30 s" in message
    assert "--profile default" in message
    assert not (tmp_path / "runs").exists()


def test_executed_copies_show_each_progress_bar_as_it_ended(tmp_path, monkeypatch):
    """A copy read without a kernel shows the text fallback of each widget: it must be the bar's
    last state, not its first (0/N); bars that tqdm hid at the end are gone, other widgets kept."""
    import json

    books = tmp_path / "notebooks"
    books.mkdir()
    write_notebook(
        books / "00_bars.ipynb",
        "profile = 'x'",
        "\n".join(
            [
                "from tqdm.auto import tqdm",
                "import ipywidgets",
                "for i in tqdm(range(7), desc='whole'):",
                "    pass",
                "for i in tqdm(range(5), desc='hidden', leave=False):",
                "    pass",
                "for i in tqdm(range(10), desc='broken off'):",
                "    if i == 3:",
                "        break",
                "display(ipywidgets.IntSlider(value=4))",
            ]
        ),
    )
    monkeypatch.setattr(report, "NOTEBOOK_DIR", books)
    table = report.run_report(
        "quick",
        out=tmp_path / "runs",
        figures=tmp_path / "figures",
        overrides={"data_root": str(tmp_path / "data")},
    )
    assert list(table["status"]) == ["ok"]
    outputs = json.loads((tmp_path / "runs" / "00_bars.ipynb").read_text())["cells"][-1]["outputs"]
    texts = ["".join(o["data"]["text/plain"]) for o in outputs]
    assert len(texts) == 3, texts
    assert texts[0].startswith("whole: 100%|██████████| 7/7 [")
    assert texts[1].startswith("broken off:  30%|███       | 3/10 [")
    assert texts[2].startswith("IntSlider(value=4")


def user_corpus_files(root, video_ids):
    """A corpus of one's own: `videos/<id>.mp4` (empty: listing does not decode) and a minimal
    metadata.csv."""
    import pandas as pd

    folder = root / "mine"
    (folder / "videos").mkdir(parents=True)
    for video_id in video_ids:
        (folder / "videos" / f"{video_id}.mp4").touch()
    pd.DataFrame({"video_id": video_ids, "path": [f"videos/{v}.mp4" for v in video_ids]}).to_csv(
        folder / "metadata.csv", index=False
    )
    return folder


def test_a_corpus_too_small_to_train_on_is_refused_before_any_notebook_runs(tmp_path):
    from mvnb.corpus import split_of

    candidates = [f"clip{i}" for i in range(200)]
    ids = [v for v in candidates if split_of(v) == "train"][:2] + [
        v for v in candidates if split_of(v) == "test"
    ][:1]
    user_corpus_files(tmp_path, ids)
    proc = report_on_own_corpus(tmp_path, "quick")
    assert proc.returncode != 0
    assert (
        "3 videos: the split gives 2 training, 0 validation and 1 test video; training needs ≥ 2 training, "
        "≥ 2 validation and ≥ 1 test video"
    ) in proc.stderr
    assert "--only 00,01,02" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_every_rotation_of_the_profile_is_checked(tmp_path):
    from mvnb.corpus import fold_of

    candidates = [f"clip{i}" for i in range(300)]
    by_fold = {f: [v for v in candidates if fold_of(v) == f] for f in (0, 1, 8, 9)}
    user_corpus_files(tmp_path, by_fold[0][:1] + by_fold[1][:1] + by_fold[8][:2] + by_fold[9][:1])
    mine = {"data_root": str(tmp_path), "corpus": "mine"}
    report.check_split(
        profile_params("quick", mine)
    )  # rotation 0: 2 training, 2 validation (fold 8), 1 test (fold 9)
    with pytest.raises(
        SystemExit,
        match="too small to train on in rotation 1. 5 videos: the split gives 3 training, "
        "0 validation and 2 test videos",
    ):
        report.check_split(
            profile_params("quick", mine | {"rotations": [0, 1]})
        )  # tests fold 8, validates on fold 7


def test_the_split_is_checked_only_when_a_chosen_notebook_trains(tmp_path, monkeypatch):
    books = tmp_path / "notebooks"
    books.mkdir()
    write_notebook(books / "01_reads.ipynb", "corpus = 'x'", "pass")
    write_notebook(books / "03_trains.ipynb", "corpus = 'x'\nruns_dir = 'runs'", "pass")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", books)
    user_corpus_files(tmp_path, ["a", "b"])
    mine = {"data_root": str(tmp_path), "corpus": "mine"}
    assert list(report.run_report("quick", ["01"], mine, tmp_path / "runs")["status"]) == ["ok"]
    with pytest.raises(SystemExit, match="2 videos: the split gives"):
        report.run_report("quick", None, mine, tmp_path / "runs")
    report.check_split(
        profile_params("quick", {"data_root": str(tmp_path / "fresh")})
    )  # the quick corpus, still to be made


def test_the_gap_study_is_skipped_on_a_corpus_of_ones_own(tmp_path, monkeypatch, capsys):
    import pandas as pd

    books = tmp_path / "notebooks"
    books.mkdir()
    write_notebook(books / "00_corpus.ipynb", "corpus = 'x'", "pass")
    write_notebook(books / "06_gap.ipynb", "profile = 'x'", "pass")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", books)
    user_corpus_files(tmp_path, ["a", "b"])
    table = report.run_report(
        "quick", None, {"data_root": str(tmp_path), "corpus": "mine"}, tmp_path / "runs", tmp_path / "figures"
    )
    assert list(table["status"]) == ["ok", "skipped"]
    assert "06_gap.ipynb" in capsys.readouterr().out.split("skipped: ")[0].splitlines()[-1]
    assert list(pd.read_csv(tmp_path / "runs" / "timings.csv")["status"]) == ["ok", "skipped"]
    assert not (tmp_path / "runs" / "06_gap.ipynb").exists()
    synthetic = report.run_report(
        "quick", None, {"data_root": str(tmp_path)}, tmp_path / "runs2", tmp_path / "figures"
    )
    assert list(synthetic["status"]) == ["ok", "ok"]
