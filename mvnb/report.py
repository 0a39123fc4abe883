"""Papermill orchestration: run `notebooks/NN_*.ipynb` in order with a profile's parameters.

Each notebook gets the profile entries that its `parameters` cell declares, so one set of
values flows through the whole report. Executed copies go to the output folder, with a
`timings.csv` of how long each took (a whole report also writes it to the figures folder as
`report_timings.csv`). The run stops at the first failing notebook and names
the notebook and the cell.

Before anything runs, a corpus too small to train on is refused, naming its split's counts
(`check_split`); on a corpus of one's own (no synth.json), the notebooks that study the
synthetic generator itself (`SYNTHETIC_ONLY`: the heterogeneity-gap sweep) are skipped and
recorded as "skipped". Each executed copy's progress bars are given the text of their final
state (`settle_progress`), so that a copy read without a kernel shows what each loop did.
"""

from __future__ import annotations

import argparse
import html
import time
from pathlib import Path

import pandas as pd

from .config import (
    PROFILES,
    REPO_ROOT,
    check_full_size,
    corpus_dir,
    is_synthetic,
    parse_overrides,
    profile_params,
    repo_path,
)
from .io import atomic_write, write_csv

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
SYNTHETIC_ONLY = ("06",)  # notebooks that sweep the synthetic generator: nothing to study on one's own videos
WIDGET_VIEW, WIDGET_STATE = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)


def report_notebooks(only: list[str] | None = None) -> list[Path]:
    """The report's notebooks in run order; `only` keeps those whose number prefix is listed."""
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]*_*.ipynb"))
    if only:
        books = [b for b in books if b.name.split("_")[0] in only]
        missing = set(only) - {b.name.split("_")[0] for b in books}
        if missing:
            raise SystemExit(f"report: no notebook numbered {', '.join(sorted(missing))} in {NOTEBOOK_DIR}")
    return books


def run_report(
    profile: str,
    only: list[str] | None = None,
    overrides: dict | None = None,
    out: str | Path | None = None,
    figures: str | Path | None = None,
) -> pd.DataFrame:
    """Execute the report's notebooks; returns one row per notebook: name, status, seconds.

    Stops at the first failure, with that row's status naming the cell. Executed copies go to
    `out` (default: the profile's runs_dir), figures to `figures` (default: figures/). Raises
    SystemExit before running anything when the corpus is too small for the chosen notebooks.
    """
    import papermill

    params = profile_params(profile, overrides)
    check_full_size(params)
    books = report_notebooks(only)
    declared = {book: papermill.inspect_notebook(str(book)) for book in books}
    if any(
        {"corpus", "runs_dir"} <= set(names) for names in declared.values()
    ):  # reads the corpus and trains on it
        check_split(params)
    if figures is not None:
        params["figures_dir"] = str(repo_path(figures))
    out_dir = repo_path(out if out is not None else params["runs_dir"])
    params["runs_dir"] = str(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for notebook in books:
        rows.append(_run_notebook(notebook, out_dir / notebook.name, params, declared[notebook]))
        if rows[-1]["status"] not in ("ok", "skipped"):
            executed = out_dir / notebook.name
            print(f"report: stopped at {notebook.name}; the executed copy with the error is {executed}")
            break
    table = pd.DataFrame(rows)
    write_csv(out_dir / "timings.csv", table)
    if only is None:  # a whole report: its timings go with its figures
        write_csv(repo_path(params["figures_dir"]) / "report_timings.csv", table)
    return table


def _run_notebook(notebook: Path, executed: Path, params: dict, declared: list[str]) -> dict:
    """Execute one notebook into `executed` with the `declared` entries of `params`, printing a line;
    returns its row `{notebook, status, seconds}` (status "ok", "skipped" or where it failed)."""
    import papermill

    start = time.perf_counter()
    if notebook.name.split("_")[0] in SYNTHETIC_ONLY and not is_synthetic(params):
        print(
            f"{notebook.name:<34} skipped: {corpus_dir(params)} has no synth.json, and this notebook "
            f"studies the "
            f"synthetic generator",
            flush=True,
        )
        return dict(notebook=notebook.name, status="skipped", seconds=0.0)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters={k: params[k] for k in declared if k in params},
            kernel_name="python3",
            cwd=str(REPO_ROOT),
            progress_bar=False,
        )
        status = "ok"
    except papermill.PapermillExecutionError as err:
        line = next((ln for ln in err.source.splitlines() if ln.strip()), "")
        status = (
            f"failed in cell {err.cell_index} of the executed copy (starting {line!r}): "
            f"{err.ename}: {err.evalue}"
        )
    finally:
        if executed.is_file():
            settle_progress(executed)
    row = dict(notebook=notebook.name, status=status, seconds=round(time.perf_counter() - start, 1))
    print(f"{notebook.name:<34} {row['seconds']:>7.1f} s  {status}", flush=True)
    return row


def corpus_video_ids(params: dict) -> list[str]:
    """The ids of the videos the report's corpus holds, or will hold once notebook 00 has made it.

    A synthetic corpus is counted from its generator's ids (`corpus.synth_video_id`, `n_videos` of
    them); one's own from its metadata.csv and videos/ as preprocessing lists them
    (`corpus.list_videos`: rows without a file and disagreeing duplicates left out).
    """
    from .corpus import list_videos, synth_video_id

    if is_synthetic(params):
        return [synth_video_id(i) for i in range(params["n_videos"])]
    folder = corpus_dir(params)
    metadata, videos = folder / "metadata.csv", folder / "videos"
    try:
        jobs, _, _ = list_videos(
            videos if videos.is_dir() else None, metadata if metadata.is_file() else None
        )
    except ValueError as error:  # a metadata.csv without video_id or path
        raise SystemExit(f"report: {error}") from None
    return [job.video_id for job in jobs]


def check_split(params: dict) -> None:
    """Refuse a corpus whose split is too small to train on, before any notebook runs.

    Counts the corpus's videos per split of each of the profile's `rotations` as training will
    (`corpus.split_counts`) against what a run needs (`train.MIN_SPLIT_VIDEOS`); raises
    SystemExit naming the rotation, the counts and the need.
    """
    from .corpus import split_counts
    from .train import split_shortfall

    ids = corpus_video_ids(params)
    for rotation in params["rotations"]:
        shortfall = split_shortfall(split_counts(ids, rotation))
        if shortfall:
            raise SystemExit(
                f"report: the corpus {corpus_dir(params)} is too small to train on in rotation {rotation}. "
                f"{shortfall}. Add videos, or run only the notebooks before training (--only 00,01,02)."
            )


def settle_progress(notebook: str | Path) -> None:
    """Give each progress bar in an executed notebook the text of its final state.

    `tqdm.auto` draws a widget; papermill saves the widgets' final state in the notebook's
    metadata, but each output's plain-text fallback, which static viewers show, is the bar as
    first drawn ("0/27"). That text is rewritten from the saved state ("27/27 [01:02<00:00, …]"),
    and the bars tqdm hid when done (`leave=False`) are dropped, as a live notebook drops them.
    Other widgets are left as they are. Rewritten atomically; a notebook without bars is untouched.
    """
    import nbformat

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    changed = False
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            bar = _tqdm_bar(output, state)
            if bar is None:
                kept.append(output)
                continue
            changed = True
            if bar:  # "" for a hidden bar
                output["data"]["text/plain"] = bar
                kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    if changed:
        with atomic_write(notebook) as tmp:
            nbformat.write(nb, tmp)


def _tqdm_bar(output: dict, state: dict) -> str | None:
    """The final text of a tqdm widget output ("" when tqdm hid it), from the saved widget
    `state`; None when the output is no tqdm bar with saved state."""
    view = output.get("data", {}).get(WIDGET_VIEW)
    box = state.get(view["model_id"], {}) if view else {}
    children = [
        state.get(ref.removeprefix("IPY_MODEL_"), {}) for ref in box.get("state", {}).get("children", [])
    ]
    names = [child.get("model_name") for child in children]
    if (
        len(names) != 3
        or names[0] != "HTMLModel"
        or names[2] != "HTMLModel"
        or names[1] not in ("FloatProgressModel", "IntProgressModel")
    ):
        return None
    layout = state.get(box["state"].get("layout", "").removeprefix("IPY_MODEL_"), {}).get("state", {})
    if layout.get("visibility") == "hidden":
        return ""
    left, progress, right = (child["state"] for child in children)
    filled = min(10, max(0, int(10 * progress["value"] / progress["max"]))) if progress.get("max") else 0
    bar = "█" * filled + " " * (10 - filled)
    return f"{_widget_text(left.get('value'))}|{bar}|{_widget_text(right.get('value'))}"


def _widget_text(value: str | None) -> str:
    """An HTML widget's value as plain text (tqdm escapes it and pads with figure spaces)."""
    return html.unescape(value or "").replace("\u2007", " ")


def _overrides(pairs: list[str]) -> dict:
    """The `-p name=value` overrides (`config.parse_overrides`), or exit saying what is wrong."""
    try:
        return parse_overrides(pairs)
    except ValueError as err:
        raise SystemExit(f"report: -p takes name=value ({err})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb report`."""
    parser.add_argument("--profile", choices=list(PROFILES), default="default")
    parser.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    parser.add_argument(
        "-p",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a profile parameter (repeatable)",
    )
    parser.add_argument("--out", help="folder for the executed notebooks (default: the profile's runs_dir)")
    parser.add_argument("--figures", help="folder for figures and tables (default: figures/)")


def run(args: argparse.Namespace) -> int:
    """Run the report; exit status 1 if a notebook failed."""
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    try:
        table = run_report(args.profile, only, _overrides(args.params), args.out, args.figures)
    except KeyError as err:
        raise SystemExit(f"report: {err.args[0]}") from None
    total = table["seconds"].sum()
    print(f"report: {len(table)} notebook(s) in {total:.0f} s ({total / 60:.1f} min)")
    return 0 if table["status"].isin(["ok", "skipped"]).all() else 1
