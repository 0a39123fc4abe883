"""The six embeddings of the paper, defined once: the probes (Table 2), browsing, the map and the
gap study all take them from here, under these names.

Each is `(n_segments, dim)` float32, segments in manifest order, from view 0 of the frozen
features (the centred 3 s window and the centre crop):

- `musicnn`: the frozen audio feature, musicnn's `max_pool ‖ mean_pool` (1506-d);
- `R(2+1)D`: the frozen video feature, R(2+1)D-18's global average pool (512-d);
- `concat`: both, each scaled to unit length first (2018-d). Its cosine is then the mean of the
  two cosines, and neither part decides by its scale alone (raw, musicnn's vector, with a norm
  in the hundreds, would outweigh R(2+1)D's). The paper's "musicnn + R(2+1)D" does not say how
  it scaled the parts;
- `CL_a`, `CL_v`: a contrastive run's audio and video embeddings, its heads applied to view 0;
- `CL_agg`: the mean of `CL_a` and `CL_v`, each at unit length first. The heads are trained on
  cosine similarity, so only directions carry meaning; the mean stays in the shared space, at
  the width of `CL_a` and `CL_v`. It is how the paper joins the modalities for its video-level
  neighbours.

Rows that are not finite (segments whose features failed) stay not finite; all-zero rows stay
zero. `video_means` averages segment rows per video, for scores and neighbours at video level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvnb.metrics import unit_rows
from mvnb.runs import read_embeddings

FROZEN = ("musicnn", "R(2+1)D", "concat")
LEARNED = ("CL_a", "CL_v", "CL_agg")
NAMES = FROZEN + LEARNED
DEFINITIONS = {
    "musicnn": "the frozen musicnn audio feature (max_pool ‖ mean_pool, 1506-d)",
    "R(2+1)D": "the frozen R(2+1)D-18 video feature (global average pool, 512-d)",
    "concat": "musicnn and R(2+1)D, each scaled to unit length, side by side (2018-d)",
    "CL_a": "the contrastive audio embedding of a training run",
    "CL_v": "the contrastive video embedding of a training run",
    "CL_agg": "the mean of CL_a and CL_v, each scaled to unit length",
}


def concat(audio, video) -> np.ndarray:
    """`concat`: `(n, audio_dim + video_dim)` of the unit-length rows of `audio` `(n, audio_dim)` and `video`
    `(n, video_dim)`."""
    if len(audio) != len(video):
        raise ValueError(
            f"audio and video cover {len(audio)} and {len(video)} segments; rebuild the feature store"
        )
    return np.hstack([unit_rows(audio), unit_rows(video)])


def cl_agg(audio, video) -> np.ndarray:
    """`CL_agg`: `(n, dim)` mean of the unit-length rows of `audio` and `video`, both `(n, dim)`."""
    if np.shape(audio) != np.shape(video):
        raise ValueError(
            f"CL_agg needs audio and video embeddings of one shape; got {np.shape(audio)} and "
            f"{np.shape(video)}"
        )
    return (unit_rows(audio) + unit_rows(video)) / 2


def frozen_embeddings(audio, video) -> dict[str, np.ndarray]:
    """`musicnn`, `R(2+1)D` and `concat` from the frozen features of one view, `(n, 1506)` and `(n, 512)`."""
    audio, video = np.asarray(audio, dtype=np.float32), np.asarray(video, dtype=np.float32)
    return {"musicnn": audio, "R(2+1)D": video, "concat": concat(audio, video)}


def learned_embeddings(cl_audio, cl_video) -> dict[str, np.ndarray]:
    """`CL_a`, `CL_v` and `CL_agg` from a run's audio and video embeddings, `(n, dim)` each."""
    cl_audio, cl_video = np.asarray(cl_audio, dtype=np.float32), np.asarray(cl_video, dtype=np.float32)
    return {"CL_a": cl_audio, "CL_v": cl_video, "CL_agg": cl_agg(cl_audio, cl_video)}


def store_embeddings(data_dir: str | Path, view: int = 0) -> dict[str, np.ndarray]:
    """The frozen embeddings (`FROZEN`) of every manifest segment of the segment store at `data_dir`, from
    view `view`."""
    from mvnb.features import load_feature_pair

    _, audio, video, _, _ = load_feature_pair(data_dir)
    return frozen_embeddings(audio[:, view], video[:, view])


def cl_embeddings(run_folder: str | Path, n_segments: int) -> dict[str, np.ndarray]:
    """The learned embeddings (`LEARNED`) of a run, `(n_segments, dim)`, from its `embeddings.npz` (view 0,
    manifest order).

    Raises FileNotFoundError or ValueError with a one-line reason when the run is missing or
    does not cover the manifest's segments.
    """
    return learned_embeddings(*read_embeddings(run_folder, n_segments))


def video_means(values: np.ndarray, video_ids) -> tuple[np.ndarray, np.ndarray]:
    """Per-video mean of segment rows: `values` `(n, k)`, `video_ids` `(n,)` → (videos `(v,)`, means `(v,
    k)`)."""
    videos, codes = np.unique(np.asarray(video_ids), return_inverse=True)
    codes = codes.ravel()
    sums = np.zeros((len(videos), values.shape[1]))
    np.add.at(sums, codes, values)
    return videos, sums / np.bincount(codes)[:, None]


def definitions_markdown(names=NAMES) -> str:
    """A markdown list of `names` with their definitions (`DEFINITIONS`), for the notebooks."""
    return "\n".join(f"- `{name}`: {DEFINITIONS[name]}" for name in names)
