"""The paper's settings as named profiles, and where things live on disk.

A profile is a flat dict of notebook parameters. `python -m mvnb report --profile NAME`
passes each notebook the entries its `parameters` cell declares, so every notebook reads
the same values, and `-p name=value` overrides any of them.

- `quick`: a handful of tiny videos for CI; the whole report runs in minutes.
- `default`: what `make report` runs on a 2-core CPU within its 30-minute budget.
- `paper`: the paper's sizes (six segments, 30 frames, batch 1000), for a GPU and real data.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_COMMON = dict(
    data_root="data",
    figures_dir="figures",
    corpus_seed=0,
    coupling=0.5,
    style_coupling=1.0,
    segments=6,
    seconds=5.0,
    fps=10,
    size="768x432",
    workers=2,
    video_weights="kinetics400",
    precision="auto",
)

PROFILES: dict[str, dict] = {
    "quick": {
        **_COMMON,
        "profile": "quick",
        "corpus": "synth_quick",
        "runs_dir": "runs/quick",
        "n_videos": 14,
        "min_seconds": 11.0,
        "max_seconds": 14.0,
        "segments": 2,
        "views": 1,
        "frames": 4,
        "batch_size": 8,
        "seeds": [0],
        "max_epochs": 3,
        "gap_points": [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]],
        "gap_videos": 40,
        "gap_segments": 2,
        "gap_size": "192x108",
        "gap_frames": 4,
    },
    "default": {
        **_COMMON,
        "profile": "default",
        "corpus": "synth_default",
        "runs_dir": "runs/default",
        "n_videos": 100,
        "min_seconds": 30.0,
        "max_seconds": 36.0,
        "views": 2,
        "frames": 8,
        "batch_size": 64,
        "seeds": [0, 1, 2],
        "max_epochs": 60,
        "gap_points": [[0.0, 1.0], [0.25, 1.0], [0.5, 1.0], [0.75, 1.0], [1.0, 1.0], [0.0, 0.0]],
        "gap_videos": 120,
        "gap_segments": 3,
        "gap_size": "384x216",
        "gap_frames": 4,
    },
    "paper": {
        **_COMMON,
        "profile": "paper",
        "corpus": "synth_paper",
        "runs_dir": "runs/paper",
        "n_videos": 2000,
        "min_seconds": 30.0,
        "max_seconds": 90.0,
        "views": 3,
        "frames": 30,
        "batch_size": 1000,
        "seeds": [0, 1, 2],
        "max_epochs": 200,
        "gap_points": [[0.0, 1.0], [0.25, 1.0], [0.5, 1.0], [0.75, 1.0], [1.0, 1.0], [0.0, 0.0]],
        "gap_videos": 1000,
        "gap_segments": 6,
        "gap_size": "768x432",
        "gap_frames": 16,
    },
}


def profile_params(name: str, overrides: dict | None = None) -> dict:
    """The parameters of profile `name`, with `overrides` applied (unknown keys are an error)."""
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    params = dict(PROFILES[name])
    unknown = set(overrides or {}) - set(params)
    if unknown:
        raise KeyError(f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(params))}")
    params.update(overrides or {})
    return params


def repo_path(path: str | Path) -> Path:
    """`path` as an absolute path; relative paths are taken from the repository root.

    Notebooks run with the repo root as cwd under `report`, but with `notebooks/` as cwd in
    JupyterLab; resolving against the root makes both read and write the same files.
    """
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def corpus_dir(params: dict) -> Path:
    """Folder of the corpus named by `params`: `videos/` and `metadata.csv` live here."""
    return repo_path(params["data_root"]) / params["corpus"]


def store_dir(params: dict) -> Path:
    """Folder of the preprocessed segment store (manifest, segments, features) of the corpus."""
    return corpus_dir(params) / "store"
