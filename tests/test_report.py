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
    write_notebook(books / "00_ok.ipynb", "profile = 'x'\nseeds = []",
                   "import pathlib\npathlib.Path(runs_dir_marker).write_text(f'{profile} {seeds}')" .replace(
                       "runs_dir_marker", repr(str(tmp_path / "seen.txt"))))
    write_notebook(books / "01_fails.ipynb", "profile = 'x'", "x = 1\nraise RuntimeError('boom')")
    write_notebook(books / "02_never.ipynb", "profile = 'x'", "pass")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", books)
    table = report.run_report("quick", out=tmp_path / "runs", figures=tmp_path / "figures",
                              overrides={"data_root": str(tmp_path / "data")})
    assert list(table["notebook"]) == ["00_ok.ipynb", "01_fails.ipynb"]
    assert table["status"][0] == "ok"
    assert "cell 2 of the executed copy (starting 'x = 1')" in table["status"][1]  # after papermill's injected cell
    assert "RuntimeError: boom" in table["status"][1]
    assert (tmp_path / "seen.txt").read_text() == f"quick {profile_params('quick')['seeds']}"
    assert (tmp_path / "runs" / "timings.csv").exists()
    assert (tmp_path / "figures" / "report_timings.csv").read_text() == (tmp_path / "runs" / "timings.csv").read_text()


def test_only_selects_by_number_and_rejects_unknown(monkeypatch, tmp_path):
    for name in ("00_a.ipynb", "01_b.ipynb", "02_c.ipynb"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", tmp_path)
    assert [p.name for p in report.report_notebooks(["02", "00"])] == ["00_a.ipynb", "02_c.ipynb"]
    with pytest.raises(SystemExit, match="07"):
        report.report_notebooks(["07"])


def test_overrides_are_literals_or_strings():
    assert report.parse_overrides(["seeds=[0, 1]", "corpus=mine", "coupling=0.25"]) == {
        "seeds": [0, 1], "corpus": "mine", "coupling": 0.25}
    with pytest.raises(KeyError, match="unknown parameter"):
        profile_params("quick", {"no_such_knob": 1})


def own_corpus(root, n_videos: int, duration_s: float | None = None):
    """A metadata.csv of `n_videos` videos (no files: the size check reads only the table)."""
    import pandas as pd

    folder = root / "mine"
    folder.mkdir(parents=True)
    table = pd.DataFrame({"video_id": [f"clip{i}" for i in range(n_videos)], "path": "x.mp4", "genre": "rock"})
    if duration_s is not None:
        table["duration_s"] = duration_s
    table.to_csv(folder / "metadata.csv", index=False)


def test_paper_profile_refuses_a_corpus_too_small_for_its_sizes_before_running_anything(tmp_path):
    import subprocess
    import sys

    own_corpus(tmp_path, 300, duration_s=20.0)
    proc = subprocess.run([sys.executable, "-m", "mvnb", "report", "--profile", "paper", "--out", str(tmp_path / "runs"),
                           "-p", f"data_root={tmp_path}", "-p", "corpus=mine"], capture_output=True, text=True)
    assert proc.returncode != 0
    message = proc.stderr
    assert "profile paper needs the paper's sizes" in message
    assert "fewer than batch_size = 1000" in message and "300 videos" in message
    assert "300 video(s) are shorter than the 30 s" in message
    assert "--profile default" in message
    assert not (tmp_path / "runs").exists()


def test_full_size_check_counts_the_training_split_and_accepts_explicit_sizes(tmp_path):
    from mvnb.config import check_full_size
    from mvnb.segments import split_of

    own_corpus(tmp_path, 300)
    n_train = sum(split_of(f"clip{i}") == "train" for i in range(300))
    mine = dict(data_root=str(tmp_path), corpus="mine")
    with pytest.raises(SystemExit, match=f"{n_train} of them in the training split"):
        check_full_size(profile_params("paper", mine))
    check_full_size(profile_params("paper", mine | {"batch_size": n_train, "gap_videos": 400}))
    check_full_size(profile_params("paper", {"data_root": str(tmp_path)}))  # to be synthesised: 2000 videos of >= 30 s
    with pytest.raises(SystemExit, match="shorter than"):
        check_full_size(profile_params("paper", {"data_root": str(tmp_path), "min_seconds": 20.0}))
    check_full_size(profile_params("default", mine))  # only full_size profiles refuse
