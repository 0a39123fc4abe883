"""Table 2: the probes' test scores on every embedding, beside the paper's and constant predictors.

The package's rooms:

- `table`: the table, its markdown, and the one writer of `table2.md` and `table2.csv`;
- `intervals`: pooling the test predictions of rotations and seeds, and the bootstrap over test videos;
- `experiment`: running every probe of the table over the report's rotations and seeds;
- `findings`: the paper's claims and the comparison with the constant predictors, decided by paired intervals;
- `figures`: per-label AUC and the genre confusion matrix.

The names others use are re-exported here, e.g. `table2.table2(scores, ...)`.
"""

from mvnb.table2.experiment import (
    embeddings_for_run,
    probes_overview,
    run_table2_probes,
)
from mvnb.table2.figures import (
    best_row,
    confusion_figure,
    genre_confusion,
    per_label_auc,
    per_label_auc_figure,
)
from mvnb.table2.findings import (
    CEILING,
    EQUIVALENCE_MARGIN,
    findings_summary,
    paired_difference,
    paper_findings,
    references_summary,
    versus_references,
)
from mvnb.table2.intervals import (
    item_index,
    level_predictions,
    metric_on_weights,
    percentile_interval,
    pooled_outputs,
    resample_test_videos,
    row_draws,
)
from mvnb.table2.table import (
    FROZEN_CONFIG,
    METRIC_LEGEND,
    METRIC_NAMES,
    TABLE2_COLUMNS,
    row_label,
    table2,
    table2_markdown,
    write_table2,
)

__all__ = [
    "FROZEN_CONFIG",
    "METRIC_NAMES",
    "METRIC_LEGEND",
    "TABLE2_COLUMNS",
    "row_label",
    "table2",
    "table2_markdown",
    "write_table2",
    "level_predictions",
    "pooled_outputs",
    "metric_on_weights",
    "resample_test_videos",
    "item_index",
    "row_draws",
    "percentile_interval",
    "embeddings_for_run",
    "run_table2_probes",
    "probes_overview",
    "EQUIVALENCE_MARGIN",
    "CEILING",
    "paired_difference",
    "paper_findings",
    "findings_summary",
    "versus_references",
    "references_summary",
    "best_row",
    "per_label_auc",
    "per_label_auc_figure",
    "genre_confusion",
    "confusion_figure",
]
