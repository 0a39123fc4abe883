"""Papermill orchestration: run `notebooks/NN_*.ipynb` in order with a profile's parameters.

Each notebook gets the profile entries that its `parameters` cell declares, so one set of
values flows through the whole report. Executed copies go to the output folder, with a
`timings.csv` of how long each took (a whole report also writes it to the figures folder as
`report_timings.csv`). The run stops at the first failing notebook and names
the notebook and the cell.
"""
from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import pandas as pd

from .config import PROFILES, REPO_ROOT, check_full_size, profile_params, repo_path
from .media import atomic_write

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def report_notebooks(only: list[str] | None = None) -> list[Path]:
    """The report's notebooks in run order; `only` keeps those whose number prefix is listed."""
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]*_*.ipynb"))
    if only:
        books = [b for b in books if b.name.split("_")[0] in only]
        missing = set(only) - {b.name.split("_")[0] for b in books}
        if missing:
            raise SystemExit(f"report: no notebook numbered {', '.join(sorted(missing))} in {NOTEBOOK_DIR}")
    return books


def notebook_parameters(notebook: Path, params: dict) -> dict:
    """The entries of `params` that `notebook`'s parameters cell declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: params[name] for name in declared if name in params}


def run_report(profile: str, only: list[str] | None = None, overrides: dict | None = None,
               out: str | Path | None = None, figures: str | Path | None = None) -> pd.DataFrame:
    """Execute the report's notebooks; returns one row per notebook: name, status, seconds.

    Stops at the first failure, with that row's status naming the cell. Executed copies go to
    `out` (default: the profile's runs_dir), figures to `figures` (default: figures/).
    """
    import papermill

    params = profile_params(profile, overrides)
    check_full_size(params)
    if figures is not None:
        params["figures_dir"] = str(repo_path(figures))
    out_dir = repo_path(out if out is not None else params["runs_dir"])
    params["runs_dir"] = str(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for notebook in report_notebooks(only):
        start = time.perf_counter()
        executed = out_dir / notebook.name
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=notebook_parameters(notebook, params),
                                       kernel_name="python3", cwd=str(REPO_ROOT), progress_bar=False)
            status = "ok"
        except papermill.PapermillExecutionError as err:
            line = next((ln for ln in err.source.splitlines() if ln.strip()), "")
            status = (f"failed in cell {err.cell_index} of the executed copy (starting {line!r}): "
                      f"{err.ename}: {err.evalue}")
        rows.append(dict(notebook=notebook.name, status=status, seconds=round(time.perf_counter() - start, 1)))
        print(f"{notebook.name:<34} {rows[-1]['seconds']:>7.1f} s  {status}", flush=True)
        if status != "ok":
            print(f"report: stopped at {notebook.name}; the executed copy with the error is {executed}")
            break
    table = pd.DataFrame(rows)
    targets = [out_dir / "timings.csv"]
    if only is None:  # a whole report: its timings go with its figures
        targets.append(repo_path(params["figures_dir"]) / "report_timings.csv")
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            table.to_csv(tmp, index=False)
    return table


def parse_overrides(pairs: list[str]) -> dict:
    """`["seeds=[0, 1]", "corpus=mine"]` -> {"seeds": [0, 1], "corpus": "mine"}; values are Python literals or strings."""
    overrides = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"report: -p takes name=value, not {pair!r}")
        try:
            overrides[name.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[name.strip()] = text
    return overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb report`."""
    parser.add_argument("--profile", choices=list(PROFILES), default="default")
    parser.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    parser.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE",
                        help="override a profile parameter (repeatable)")
    parser.add_argument("--out", help="folder for the executed notebooks (default: the profile's runs_dir)")
    parser.add_argument("--figures", help="folder for figures and tables (default: figures/)")


def run(args: argparse.Namespace) -> int:
    """Run the report; exit status 1 if a notebook failed."""
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    try:
        table = run_report(args.profile, only, parse_overrides(args.params), args.out, args.figures)
    except KeyError as err:
        raise SystemExit(f"report: {err.args[0]}") from None
    total = table["seconds"].sum()
    print(f"report: {len(table)} notebook(s) in {total:.0f} s ({total / 60:.1f} min)")
    return 0 if (table["status"] == "ok").all() else 1
