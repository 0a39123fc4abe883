"""What each frozen encoder can see: linear read-outs of the music's ground truth from its features.

The synthetic corpus knows, second by second, what its songs do (`synth.factor_table`):
section energy, onset density, tempo, key, mode, distortion, lead instrument. A factor can
unite audio and video only if the picture follows it *and* both encoders see it. The panel
asks the second question directly: a linear read-out of each factor from frozen features,
with cross-validation by video (no video is in the training and the held-out part of one
fold), scored on the held-out predictions with a 95 % interval from a bootstrap over videos.

- Continuous factors: ridge regression on standardised features (`mvnb.standardise`, the
  statistics of the training folds only), the penalty chosen inside each training fold;
  scored by held-out R² (0: no better than the mean; below 0: worse).
- Binary (`minor`) and categorical (`lead`) factors: logistic regression; scored by held-out
  ROC-AUC (macro over classes for `lead`; 0.5 is chance).

A segment's factor is the overlap-weighted mean of the table's steps over its span
(`segment_factors`); the lead instrument is the song's.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GroupKFold

from mvnb import standardise
from mvnb.metrics import bootstrap_weights, weighted_per_label_roc_auc
from mvnb.synth import FACTOR_STEP_S, FACTORS_FILE, LEADS

CONTINUOUS = ("energy", "onset_density", "tempo_bpm", "key_sin", "key_cos", "distortion")
CATEGORICAL = ("minor", "lead")
FACTORS = CONTINUOUS + CATEGORICAL
ALPHAS = np.logspace(-1, 5, 13)
N_FOLDS = 5
N_DRAWS = 1000


def load_factors(corpus_dir: str | Path) -> pd.DataFrame:
    """The factor table of a synthetic corpus (`synth.factor_table`), as written beside its videos."""
    path = Path(corpus_dir) / FACTORS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {FACTORS_FILE} in {corpus_dir}: only a synthetic corpus knows its music's "
            f"ground truth (rebuild it with `python -m mvnb synth`)"
        )
    return pd.read_csv(path, dtype={"video_id": str})


def segment_factors(manifest: pd.DataFrame, factors: pd.DataFrame, source: str = "heard") -> pd.DataFrame:
    """Each segment's factors `(n_segments, len(FACTORS))`, in manifest order, for one `source`.

    manifest: `video_id, start_s, end_s` per segment; factors: `factor_table`'s rows. Continuous
    factors (and `minor`) are the mean over the segment's span, each step weighted by its
    overlap with it; `lead` is the song's. A segment with no step of that source is NaN.
    """
    steps = factors[factors["source"] == source]
    spans = manifest[["video_id", "start_s", "end_s"]].reset_index(names="segment")
    joined = spans.merge(steps, on="video_id")
    overlap = (
        np.minimum(joined["end_s"], joined["t_s"] + FACTOR_STEP_S)
        - np.maximum(joined["start_s"], joined["t_s"])
    ).clip(lower=0)
    numeric = [*CONTINUOUS, "minor"]
    weighted = joined[numeric].mul(overlap, axis=0).assign(segment=joined["segment"], weight=overlap)
    sums = weighted.groupby("segment").sum()
    out = sums[numeric].div(sums["weight"].where(sums["weight"] > 0), axis=0)
    out["lead"] = joined.groupby("segment")["lead"].first()
    return out.reindex(range(len(manifest)))


def held_out_predictions(x, y, groups, factor: str, n_folds: int = N_FOLDS) -> np.ndarray:
    """Cross-validated predictions of factor `y` `(n,)` from features `x` `(n, dim)`, folds by `groups`.

    Continuous factors: `(n,)` ridge predictions. `minor`: `(n,)` probabilities of 1. `lead`:
    `(n, len(LEADS))` class probabilities (0 for a class a training fold lacks).
    """
    x, y, groups = np.asarray(x, dtype=np.float32), np.asarray(y), np.asarray(groups)
    out = np.zeros((len(y), len(LEADS))) if factor == "lead" else np.zeros(len(y))
    for train, test in GroupKFold(n_splits=min(n_folds, len(np.unique(groups)))).split(x, groups=groups):
        stats = standardise.fit(x, train)
        xt, xh = stats.apply(x[train]), stats.apply(x[test])
        if factor in CONTINUOUS:
            out[test] = RidgeCV(alphas=ALPHAS).fit(xt, y[train]).predict(xh)
            continue
        target = y[train] if factor == "lead" else y[train].astype(int)
        if len(np.unique(target)) < 2:
            out[test] = 1.0 if factor != "lead" else 0.0
            continue
        model = LogisticRegression(C=0.01, max_iter=2000).fit(xt, target)
        probs = model.predict_proba(xh)
        if factor == "lead":
            out[np.ix_(test, [LEADS.index(c) for c in model.classes_])] = probs
        else:
            out[test] = probs[:, list(model.classes_).index(1)]
    return out


def weighted_r2(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """R² = 1 − SS_res / SS_tot of `pred` for `y` `(n,)`, each row weighted, per row of `weights` `(d, n)`."""
    total = weights.sum(1, keepdims=True)
    mean = (weights @ y)[:, None] / total
    ss_res = weights @ (y - pred) ** 2
    ss_tot = (weights * (y[None, :] - mean) ** 2).sum(1)
    return 1 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)


def readout_scores(y, pred, factor: str, weights: np.ndarray) -> np.ndarray:
    """The factor's score (R², or AUC: macro over present classes for `lead`) per row of `weights` `(d,
    n)`."""
    if factor in CONTINUOUS:
        return weighted_r2(np.asarray(y, dtype=float), pred, weights)
    if factor == "minor":
        return weighted_per_label_roc_auc(np.asarray(y)[:, None], pred[:, None], weights)[:, 0]
    y = np.asarray(y)
    present = [i for i, lead in enumerate(LEADS) if 0 < (y == lead).sum() < len(y)]
    if not present:
        return np.full(len(weights), np.nan)
    one_hot = y[:, None] == np.asarray(LEADS)[present]
    return np.nanmean(weighted_per_label_roc_auc(one_hot, pred[:, present], weights), axis=1)


def readout(x, y, groups, factor: str, n_draws: int = N_DRAWS, seed: int = 0) -> dict:
    """Held-out score of one factor's read-out from `x` `(n, dim)`: `score`, `low`, `high` (95 % interval
    over a bootstrap of videos), `metric` ("R²" or "AUC"), `chance` (0 or 0.5), `videos`."""
    keep = pd.notna(pd.Series(y)).to_numpy()
    x, y, groups = np.asarray(x)[keep], np.asarray(y)[keep], np.asarray(groups)[keep]
    pred = held_out_predictions(x, y, groups, factor)
    estimate = readout_scores(y, pred, factor, np.ones((1, len(y))))[0]
    draws = readout_scores(y, pred, factor, bootstrap_weights(groups, n_draws, seed))
    low, high = np.nanquantile(draws, [0.025, 0.975])
    continuous = factor in CONTINUOUS
    return {
        "score": float(estimate),
        "low": float(low),
        "high": float(high),
        "metric": "R²" if continuous else "AUC",
        "chance": 0.0 if continuous else 0.5,
        "videos": len(np.unique(groups)),
    }


def readout_panel(
    inputs: dict[str, tuple[np.ndarray, pd.DataFrame]],
    groups,
    factors: tuple[str, ...] = FACTORS,
    seed: int = 0,
) -> pd.DataFrame:
    """Every factor × input: `factor, input, score, low, high, metric, chance, videos`.

    inputs: `{name: (features (n, dim), targets)}`, targets being `segment_factors` of the rows,
    e.g. musicnn against the heard song, R(2+1)D at a sweep point against the heard (or the
    phantom) song. groups: `(n,)` video ids (the folds and the bootstrap keep videos whole).
    """
    rows = [
        {"factor": f, "input": name, **readout(x, targets[f].to_numpy(), groups, f, seed=seed)}
        for name, (x, targets) in inputs.items()
        for f in factors
    ]
    return pd.DataFrame(rows)


def readout_heatmap(
    panel: pd.DataFrame, title: str = "linear read-outs of the music from frozen features"
) -> plt.Figure:
    """Factor × input heatmap of held-out scores, each cell '0.83 [0.78, 0.87]'; R² rows and AUC rows share
    one colour scale by mapping AUC 0.5..1 onto 0..1."""
    factors = list(dict.fromkeys(panel["factor"]))
    names = list(dict.fromkeys(panel["input"]))
    table = panel.set_index(["factor", "input"])
    fig, ax = plt.subplots(
        figsize=(2.2 + 2.4 * len(names), 0.9 + 0.5 * len(factors)), constrained_layout=True
    )
    shade = np.full((len(factors), len(names)), np.nan)
    for i, f in enumerate(factors):
        for j, name in enumerate(names):
            r = table.loc[(f, name)]
            shade[i, j] = r["score"] if r["metric"] == "R²" else 2 * (r["score"] - 0.5)
            ax.text(
                j,
                i,
                f"{r['score']:.2f} [{r['low']:.2f}, {r['high']:.2f}]",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shade[i, j] > 0.6 else "black",
            )
    image = ax.imshow(np.clip(shade, 0, 1), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    metric = {f: table.loc[(f, names[0]), "metric"] for f in factors}
    ax.set_yticks(range(len(factors)), [f"{f} ({metric[f]})" for f in factors])
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="R², or 2·(AUC − 0.5)")
    return fig
