"""MLP probes of an embedding: what genre and tags a frozen or learned embedding predicts.

The package's rooms, in import order:

- `labels`: the tasks (genre, the top tags) and their labels, read from the manifest;
- `scores`: thresholds, scoring (macro ROC-AUC, F1 at 0.5 and at a validation threshold) and
  the constant reference predictors;
- `probe`: the probe itself (`ProbeConfig`, training with early stopping, `run_probe`, `run_probes`).

Table 2, which runs these probes over rotations and seeds, is `mvnb.table2`. The names others use
are re-exported here, e.g. `probes.genre_task(manifest)`.
"""

from mvnb.probes.labels import (
    TASKS,
    TOP_TAGS,
    ProbeTask,
    genre_task,
    label_basis,
    label_counts,
    probe_tasks,
    tag_task,
    task_rows,
)
from mvnb.probes.probe import (
    ProbeConfig,
    build_probe,
    predict_probs,
    run_probe,
    run_probes,
    train_probe,
)
from mvnb.probes.scores import (
    LEVELS,
    METRICS,
    REFERENCE_CONFIG,
    REFERENCES,
    THRESHOLDS,
    ProbeResult,
    at_level,
    choose_threshold,
    metric_outputs,
    predicted_labels,
    reference_probs,
    run_references,
    score_predictions,
    training_prior,
)

__all__ = [
    "TOP_TAGS",
    "TASKS",
    "ProbeTask",
    "genre_task",
    "tag_task",
    "label_basis",
    "probe_tasks",
    "label_counts",
    "task_rows",
    "LEVELS",
    "THRESHOLDS",
    "METRICS",
    "REFERENCE_CONFIG",
    "REFERENCES",
    "ProbeResult",
    "predicted_labels",
    "metric_outputs",
    "choose_threshold",
    "score_predictions",
    "at_level",
    "training_prior",
    "reference_probs",
    "run_references",
    "ProbeConfig",
    "build_probe",
    "train_probe",
    "predict_probs",
    "run_probe",
    "run_probes",
]
