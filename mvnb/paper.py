"""The paper's facts that our tables print beside ours: its Table 1 (median ranks), its pools, its
Table 2 (AUC and F1 of the probes), the CL configuration its Table 2 used, and how finely it prints.

Only experiment modules read these (`mvnb.results` for Table 1, `mvnb.table2` and
`mvnb.table2.findings` for Table 2). The metrics' own default pool sizes
(`mvnb.metrics.PAPER_POOL_SIZE`, `PAPER_MIN_POOL_SIZE`) are parameters of a core function and stay
there, since core never imports an experiment module.
"""

from __future__ import annotations

# Table 1 of the paper: label and test median rank a→v, v→a in pools of 1000 (chance 500.5).
PAPER_TABLE1: dict[str, tuple[str, float, float]] = {
    "paper_baseline": ("CL baseline (hidden 512, embedding 256, τ = 1)", 507, 502),
    "emb512": ("embedding size 512", 494, 498),
    "four_layers": ("four projection layers", 503, 501),
    "single_head": ("single projection head (video → musicnn dimension)", 499, 497),
    "tau_0.3": ("τ = 0.3", 497, 503),
    "ae_init": ("autoencoder-initialised heads", 501, 500),
}
PAPER_POOL = 1000  # the paper's pools: its median ranks / 1000 are its Table 1 as a share of the pool

# Table 2 of the paper: (AUC, F1) per embedding and task. The paper has one CL configuration, its baseline.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "musicnn": {"tags": (0.78, 0.22), "genre": (0.79, 0.18)},
    "R(2+1)D": {"tags": (0.66, 0.09), "genre": (0.68, 0.05)},
    "concat": {"tags": (0.78, 0.24), "genre": (0.82, 0.21)},
    "CL_a": {"tags": (0.70, 0.10), "genre": (0.69, 0.08)},
    "CL_v": {"tags": (0.61, 0.09), "genre": (0.63, 0.04)},
    "CL_agg": {"tags": (0.71, 0.11), "genre": (0.68, 0.07)},
}
PAPER_CL_CONFIG = "paper_baseline"
PAPER_RESOLUTION = 0.01  # the paper prints two decimals: differences up to this are not resolved
