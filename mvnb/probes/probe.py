"""Downstream probes: a small MLP on frozen embeddings, for genre (multi-class) and tags (multi-label).

The paper's Experiments 2 and 3 ask whether contrastive training makes better representations
(RQ1) by training the same classifier on the six embeddings of `mvnb.embeddings` (`musicnn`,
`R(2+1)D`, `concat`; `CL_a`, `CL_v`, `CL_agg` of each training configuration). Its tasks and
labels are `mvnb.probes.labels`; how its predictions are scored, and the reference predictors,
`mvnb.probes.scores`; Table 2 over rotations and seeds, `mvnb.table2.experiment` and `mvnb.table2`.

**Probe.** The paper's three-layer perceptron: dense 512 → ReLU → dropout → dense 256 → ReLU →
dropout → dense to one output per label. Inputs are standardised with the training split's mean
and sd (`mvnb.standardise`, the code of the heads' `input_norm="standard"` too), so embeddings
of different scales (sigmoid outputs, pooled musicnn activations) meet the
same optimiser. Adam, mini-batches, early stopping on validation loss with the best weights
kept. The paper states none of dropout, optimiser or stopping: `ProbeConfig` holds our choices.

**Splits and rotations.** A run of the probes is one fold rotation of the corpus's video-level
split (`mvnb.corpus.manifest_split`) and one seed: it trains on the rotation's training
videos, stops on its validation fold and predicts its test fold, on the CL embeddings of the
contrastive run of the same rotation and seed, whose heads saw only the same training videos;
so the probes' test videos are unseen by both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from mvnb.device import default_device, torch_threads
from mvnb.metrics import is_collapsed
from mvnb.probes.labels import ProbeTask, task_rows
from mvnb.probes.scores import ProbeResult, score_predictions
from mvnb.standardise import standardise


@dataclass(frozen=True)
class ProbeConfig:
    """The probe and its training; the hidden widths are the paper's, the rest our choices."""

    hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10  # epochs without a lower validation loss before stopping
    cpu_threads: int | None = 1  # torch threads while a probe trains on CPU; None keeps torch's setting


def build_probe(in_dim: int, n_labels: int, config: ProbeConfig = ProbeConfig()) -> nn.Sequential:
    """`(batch, in_dim)` → `(batch, n_labels)` logits: [dense → ReLU → dropout] per hidden width, then
    dense."""
    widths = (in_dim, *config.hidden)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(config.dropout)]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_labels))


def train_probe(
    x: torch.Tensor,
    targets: torch.Tensor,
    multilabel: bool,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    seed: int,
    config: ProbeConfig = ProbeConfig(),
) -> tuple[nn.Sequential, dict]:
    """Train a probe with early stopping on validation loss; returns it (best weights, eval mode) and its
    history.

    x: `(n, dim)` float32 standardised inputs; targets: `(n, n_labels)` float32 indicators, both
    on the training device. The seed drives initialisation, dropout and batch order.
    History: `epochs` run, `best_epoch`, `val_loss` of the best epoch.
    """
    torch.manual_seed(seed)
    model = build_probe(x.shape[1], targets.shape[1], config).to(x.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = _loss_fn(multilabel)
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = (
        torch.as_tensor(train_rows, device=x.device),
        torch.as_tensor(val_rows, device=x.device),
    )
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    epoch = -1
    for epoch in range(config.max_epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(x.device)]
        for lo in range(0, len(order), config.batch_size):
            batch = order[lo : lo + config.batch_size]
            loss = loss_fn(model(x[batch]), targets[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(x[val_idx]), targets[val_idx]).item()
        if val_loss < best["val_loss"]:
            state = {k: v.clone() for k, v in model.state_dict().items()}
            best = {"val_loss": val_loss, "epoch": epoch, "state": state}
        elif epoch - best["epoch"] >= config.patience:
            break
    if best["state"] is None:
        raise RuntimeError("probe validation loss was never finite; check the embeddings for NaN")
    model.load_state_dict(best["state"])
    return model.eval(), {"epochs": epoch + 1, "best_epoch": best["epoch"], "val_loss": best["val_loss"]}


def _loss_fn(multilabel: bool):
    """Binary cross-entropy per tag, or cross-entropy over the classes of one-hot targets."""
    if multilabel:
        return nn.BCEWithLogitsLoss()
    cross_entropy = nn.CrossEntropyLoss()
    return lambda logits, targets: cross_entropy(logits, targets.argmax(1))


@torch.no_grad()
def predict_probs(model: nn.Sequential, x: torch.Tensor, rows: np.ndarray, multilabel: bool) -> np.ndarray:
    """`(len(rows), n_labels)` probabilities: sigmoid per tag, or softmax over classes."""
    logits = model(x[torch.as_tensor(rows, device=x.device)])
    return (torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)).cpu().numpy()


def run_probe(
    x,
    task: ProbeTask,
    split,
    video_ids,
    seed: int,
    config: ProbeConfig = ProbeConfig(),
    device: str | torch.device | None = None,
) -> ProbeResult:
    """Train a probe for `task` on the labelled training segments of `x`, stop on validation, score on test.

    x: `(n_segments, dim)` embeddings in manifest order; split, video_ids: `(n_segments,)`.
    Segments whose embedding is not finite (features that failed) are left out and counted in
    `n_nonfinite`. Returns the scores at segment and video level (see the module docstring). Raises
    ValueError with a one-line reason when a split has no labelled segment.
    """
    x, split, video_ids = np.asarray(x, dtype=np.float32), np.asarray(split), np.asarray(video_ids)
    if not len(x) == len(split) == len(video_ids) == len(task.targets):
        raise ValueError(
            f"need one embedding, split and video id per segment of the task: {len(x)}, {len(split)}, "
            f"{len(video_ids)} and {len(task.targets)}"
        )
    finite = np.isfinite(x).all(1)
    rows = task_rows(task, split, finite)
    device = torch.device(device) if device else default_device()
    xs = torch.from_numpy(standardise(x, rows["train"])).to(device)
    targets = torch.from_numpy(task.targets.astype(np.float32)).to(device)
    with torch_threads(config.cpu_threads if device.type == "cpu" else None):
        model, history = train_probe(xs, targets, task.multilabel, rows["train"], rows["val"], seed, config)
        probs = {s: predict_probs(model, xs, rows[s], task.multilabel) for s in ("val", "test")}
    return score_predictions(
        task, rows, probs, video_ids, {"n_nonfinite": int((~finite & task.labelled).sum()), **history}
    )


def run_probes(
    embeddings: dict[tuple[str, str], np.ndarray],
    tasks: dict[str, ProbeTask],
    split,
    video_ids,
    seed: int,
    config: ProbeConfig = ProbeConfig(),
    device: str | torch.device | None = None,
    progress: bool = True,
    rotation: int = 0,
) -> tuple[pd.DataFrame, dict, list[str]]:
    """Every embedding × task with one seed, on the split of one rotation.

    Returns a table with one row per probe (`embedding, config, rotation, seed, task, collapsed`
    and the scores of `ProbeResult.scores`), the `ProbeResult`s keyed by `(embedding, config,
    task, rotation, seed)`, and one-line notes on probes that could not run (the others still
    do). An embedding whose test segments have collapsed (`metrics.is_collapsed`) is flagged, not
    probed: its row has `collapsed` True and no scores.
    """
    rows, results, notes = [], {}, []
    test = np.asarray(split) == "test"
    collapsed = {key: is_collapsed(x[test & np.isfinite(x).all(1)]) for key, x in embeddings.items()}
    jobs = [(key, task) for key in embeddings for task in tasks.values()]
    run = {"rotation": rotation, "seed": seed}
    for (name, cfg), task in tqdm(jobs, desc=f"probes rotation {rotation} seed {seed}", disable=not progress):
        if collapsed[(name, cfg)]:
            rows.append({"embedding": name, "config": cfg, **run, "task": task.name, "collapsed": True})
            continue
        try:
            result = run_probe(embeddings[(name, cfg)], task, split, video_ids, seed, config, device)
        except ValueError as err:
            notes.append(f"{name} ({cfg}) rotation {rotation} seed {seed}: {err}")
            continue
        results[(name, cfg, task.name, rotation, seed)] = result
        rows.append(
            {"embedding": name, "config": cfg, **run, "task": task.name, "collapsed": False, **result.scores}
        )
    return pd.DataFrame(rows), results, notes
