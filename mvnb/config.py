"""The paper's settings as named profiles, and where things live on disk.

A profile is a flat dict of notebook parameters. `python -m mvnb report --profile NAME`
passes each notebook the entries its `parameters` cell declares, so every notebook reads
the same values, and `-p name=value` overrides any of them.

- `quick`: a handful of tiny videos for CI; the whole report runs in minutes.
- `default`: what `make report` runs on a 2-core CPU within its 30-minute budget.

`rotations` and `seeds` name the contrastive runs of notebooks 03-05b: one per (rotation, seed).
Rotation r tests fold (9 − r) mod 10 (`mvnb.corpus.rotation_split`), so each rotation adds a
tenth of the corpus to the test videos that the tables pool; `default` runs five rotations of one
seed, so that about half of its videos are tested, rather than one tenth under several seeds.
- `paper`: the paper's sizes (six segments, 30 frames, batch 1000), for a GPU and real data.
  It is `full_size`: `check_full_size` refuses a corpus too small for these sizes instead of
  letting them shrink silently.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from .corpus import split_counts, synth_video_id

REPO_ROOT = Path(__file__).resolve().parent.parent

_COMMON = dict(
    data_root="data",
    figures_dir="figures",
    corpus_seed=0,
    coupling=0.5,
    style_coupling=0.5,
    segments=6,
    seconds=5.0,
    fps=10,
    size="768x432",
    workers=2,
    video_weights="kinetics400",
    precision="auto",
    # what runs: the contrastive configurations (03), those probed (04) and mapped (05b), the tags probed (04)
    configs=[
        "paper_baseline",
        "emb512",
        "four_layers",
        "single_head",
        "tau_0.3",
        "ae_init",
        "no_sigmoid",
        "learnable_tau",
        "paper_std",
        "corrected",
    ],
    cl_configs=["paper_baseline", "corrected"],
    map_configs=["corrected", "paper_baseline"],
    top_tags=10,
    # the sweep's split: 60/20/20 by the hash of the id, for test galleries of 100+ segments
    gap_folds_per_split=2,
    # the sweep's videos are rendered at the rate preprocessing samples at (`mvnb.gap.SweepSettings.fps`)
    gap_fps=10,
)

# The coupling sweep's points (coupling, style_coupling): the style-0 curve, whose first point has
# independent modalities, and the style-1 curve, where the genre's look is added.
GAP_POINTS = [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]

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
        "rotations": [0],
        "seeds": [0],
        "max_epochs": 3,
        "gap_points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]],
        "gap_seeds": [0],
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
        "rotations": [0, 1, 2, 3, 4],
        "seeds": [0],
        "max_epochs": 60,
        "gap_points": GAP_POINTS,
        "gap_seeds": [0, 1, 2],
        "gap_videos": 360,
        "gap_segments": 3,
        "gap_size": "192x108",
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
        "rotations": [0],
        "seeds": [0, 1, 2],
        "max_epochs": 200,
        "full_size": True,
        "gap_points": GAP_POINTS,
        "gap_seeds": [0, 1, 2],
        "gap_videos": 1800,
        "gap_segments": 6,
        "gap_size": "768x432",
        "gap_frames": 16,
    },
}


def split_override(pair: str) -> tuple[str, str]:
    """`"lr=0.001"` → `("lr", "0.001")`: one `name=value` override from a command line (stripped);
    ValueError when it has no `=`."""
    name, sep, value = pair.partition("=")
    if not sep:
        raise ValueError(f"an override is name=value, not {pair!r}")
    return name.strip(), value.strip()


def parse_overrides(pairs: list[str]) -> dict:
    """`["seeds=[0, 1]", "corpus=mine"]` → `{"seeds": [0, 1], "corpus": "mine"}`: values are Python
    literals where they parse as one, else strings."""
    overrides = {}
    for pair in pairs:
        name, text = split_override(pair)
        try:
            overrides[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[name] = text
    return overrides


def profile_params(name: str, overrides: dict | None = None) -> dict:
    """The parameters of profile `name`, with `overrides` applied (unknown keys are an error)."""
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    params = dict(PROFILES[name])
    unknown = set(overrides or {}) - set(params)
    if unknown:
        raise KeyError(
            f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(params))}"
        )
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


def segment_store(params: dict) -> Path:
    """Folder of the preprocessed segment store (manifest, segments, features) of the corpus."""
    return corpus_dir(params) / "store"


def is_synthetic(params: dict) -> bool:
    """Whether the corpus named by `params` is mvnb's synthetic one: its folder holds synth.json,
    or holds neither a metadata.csv nor a videos/ folder yet (notebook 00 then renders it there).
    Any other corpus is one's own videos, described by its metadata.csv or its videos/ folder."""
    folder = corpus_dir(params)
    return (folder / "synth.json").is_file() or not (
        (folder / "metadata.csv").is_file() or (folder / "videos").is_dir()
    )


def check_full_size(params: dict) -> None:
    """For a `full_size` profile, refuse a corpus too small for its sizes, with the reason.

    A batch takes one segment per video, so the training split of every rotation (about 80 % of
    the videos, by a hash of their ids, counted exactly) needs at least `batch_size` videos, in the corpus
    and in
    the gap study's sweep corpus; and every video needs `segments × seconds` of duration, or it
    yields fewer segments. An existing corpus is counted from its metadata.csv (durations from
    its `duration_s` column or the store's probed videos.csv, where present); one still to be
    synthesised from `n_videos` and `min_seconds`. Raises SystemExit naming what is short and how to proceed.
    """
    if not params.get("full_size"):
        return
    problems = _size_problems(params, *_corpus_videos(params))
    if problems:
        raise SystemExit(
            f"profile {params['profile']} needs the paper's sizes, and this corpus is too small for them:\n "
            f" - "
            + "\n  - ".join(problems)
            + "\nAdd videos, or run a smaller profile (--profile default), or lower the sizes explicitly "
            "(e.g. -p batch_size=256 -p gap_videos=400)."
        )


def _synthetic_ids(n: int) -> pd.Series:
    """The ids of a synthetic corpus of `n` videos, `(n,)`."""
    return pd.Series([synth_video_id(i) for i in range(n)])


def _corpus_videos(params: dict) -> tuple[pd.Series, pd.Series | None, str]:
    """`(ids, durations or None, source)` of the corpus named by `params`: from its metadata.csv
    (durations from its `duration_s` column or the store's videos.csv), else the synthetic corpus
    still to be made (`n_videos` ids, `min_seconds` as the shortest duration); source names it."""
    metadata = corpus_dir(params) / "metadata.csv"
    if not metadata.is_file():
        source = f"a synthetic corpus of n_videos = {params['n_videos']}"
        return _synthetic_ids(params["n_videos"]), pd.Series([params["min_seconds"]]), source
    table = pd.read_csv(metadata)
    probed = segment_store(params) / "videos.csv"
    if "duration_s" not in table and probed.is_file():
        # the store's videos.csv (`segments.load_videos`) names the probed length `media_duration_s`
        probed = pd.read_csv(probed)[["video_id", "media_duration_s"]]
        table = table.merge(
            probed.rename(columns={"media_duration_s": "duration_s"}), on="video_id", how="left"
        )
    return table["video_id"].astype(str), table.get("duration_s"), str(metadata)


def _size_problems(params: dict, ids: pd.Series, durations: pd.Series | None, source: str) -> list[str]:
    """What is too small for the sizes of `params`: each problem as one sentence (see `check_full_size`)."""
    problems = []
    n_train, rotation = min((split_counts(ids, r)["train"], r) for r in params["rotations"])
    if n_train < params["batch_size"]:
        problems.append(
            f"{source} has {len(ids)} videos, {n_train} of them in the training split of rotation "
            f"{rotation}, "
            f"fewer than batch_size = {params['batch_size']} (a batch takes one segment per video)"
        )
    gap_train = split_counts(
        _synthetic_ids(params["gap_videos"]), folds_per_split=params["gap_folds_per_split"]
    )["train"]
    if gap_train < params["batch_size"]:
        problems.append(
            f"the gap study's sweep corpus (gap_videos = {params['gap_videos']}) has {gap_train} "
            f"training videos, fewer than batch_size = {params['batch_size']}"
        )
    need = params["segments"] * params["seconds"]
    if durations is not None and (durations.dropna() < need).any():
        short = int((durations.dropna() < need).sum())
        problems.append(
            f"{short} video(s) are shorter than the {need:g} s that {params['segments']} segments of "
            f"{params['seconds']:g} s need"
        )
    return problems
