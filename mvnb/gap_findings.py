"""The heterogeneity-gap study's figures and findings (notebook 06): the sweep's curves, and the
conclusion in words, from the table that `mvnb.gap.sweep_summary` computes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .io import format_interval


def gap_figure(summary: pd.DataFrame) -> plt.Figure:
    """Median rank / pool and genre probe AUC against coupling, from `sweep_summary`: one curve per
    configuration and style coupling (solid: style 0, the style independent of the genre; dashed:
    style 1). Error bars on the left: 95 % bootstrap intervals over test videos; the right shows
    means over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    styles = sorted(summary["style_coupling"].unique())
    _draw_curves(axes, summary, styles)
    axes[0].axhline(summary["chance"].median(), color="k", ls=":", lw=1, label="chance (P+1)/2P")
    axes[0].text(
        0.01,
        0.625,
        "x: collapsed, not scored",
        transform=axes[0].get_yaxis_transform(),
        fontsize=7,
        va="bottom",
    )
    axes[0].set(
        xlabel="coupling",
        ylabel="test median rank / pool",
        ylim=(0, 0.65),
        title="cross-modal retrieval (both directions, 95 % CI over test videos)",
    )
    axes[1].set(
        xlabel="coupling",
        ylabel="genre macro ROC-AUC (video level)",
        title="genre probe on the test split (mean over seeds)",
    )
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def _draw_curves(axes, summary: pd.DataFrame, styles: list[float]) -> None:
    """The curves of `gap_figure` on its two `axes`: per configuration and style, median rank / pool
    with its intervals (left) and the CL_agg genre AUC (right); the frozen concat AUC per style (right)."""
    for i, (name, rows) in enumerate(summary.groupby("config", sort=False)):
        for style in styles:
            curve = rows[rows["style_coupling"] == style].sort_values("coupling")
            x = curve["coupling"] + 0.012 * (i - 1)  # side by side, so the intervals do not hide each other
            err = np.abs(curve[["mr_pool_low", "mr_pool_high"]].to_numpy().T - curve["mr_pool"].to_numpy())
            ls = "-" if style == styles[0] else "--"
            label = f"{name}, style {style:g}"
            axes[0].errorbar(
                x, curve["mr_pool"], err, marker="o", capsize=3, ls=ls, color=f"C{i}", label=label
            )
            gone = curve["versus_chance"] == "collapsed"
            axes[0].scatter(x[gone], np.full(gone.sum(), 0.62), marker="x", color=f"C{i}")
            axes[1].plot(
                curve["coupling"],
                curve["genre_auc_cl_agg"],
                marker="o",
                ls=ls,
                color=f"C{i}",
                label=f"CL_agg, {label}",
            )
    for style in styles:
        frozen = (
            summary[summary["style_coupling"] == style].drop_duplicates("coupling").sort_values("coupling")
        )
        axes[1].plot(
            frozen["coupling"],
            frozen["genre_auc_concat"],
            marker="s",
            color="k",
            ls="-" if style == styles[0] else "--",
            label=f"concat (frozen), style {style:g}",
        )


def _curve_text(rows: pd.DataFrame) -> str:
    """'coupling 0: 0.47 [0.40, 0.55]; coupling 1: …' for one configuration's points, in coupling order."""
    return "; ".join(
        f"coupling {r.coupling:g}: "
        + (
            "collapsed"
            if r.versus_chance == "collapsed"
            else format_interval(r.mr_pool, r.mr_pool_low, r.mr_pool_high, 2)
        )
        + (f" ({r.collapsed})" if r.collapsed != "none" else "")
        for r in rows.sort_values("coupling").itertuples()
    )


def conclusion(summary: pd.DataFrame, panel: pd.DataFrame | None = None) -> str:
    """RQ1 in plain words, from `sweep_summary` and the read-out `panel` (Markdown). Every claim is decided
    by an interval: "below chance" means the 95 % interval of median rank / pool lies under it."""
    fewest, most = int(summary["test_videos"].min()), int(summary["test_videos"].max())
    lines = [
        f"Chance is a median rank of {summary['chance'].median():.2f} of the pool; "
        f"{fewest if fewest == most else f'{fewest}–{most}'} test videos behind each number."
    ]
    lines += _independent_lines(summary) + _curve_lines(summary) + _style_lines(summary)
    lines += _paper_lines(summary)
    if panel is not None:
        for name, rows in panel.groupby("input", sort=False):
            seen = [f"{r.factor} ({r.metric} {r.score:.2f})" for r in rows.itertuples() if r.low > r.chance]
            lines.append(
                f"- **{name} sees** (read-out interval above chance): {', '.join(seen) or 'nothing'}."
            )
    return "\n".join(lines)


def _independent_lines(summary: pd.DataFrame) -> list[str]:
    """The line on the independent modalities (0, 0), per configuration; none without that point."""
    independent = summary[(summary["coupling"] == 0) & (summary["style_coupling"] == 0)]
    if not len(independent):
        return []
    cells = "; ".join(
        f"{r.config} "
        + (
            "collapsed"
            if r.versus_chance == "collapsed"
            else f"{format_interval(r.mr_pool, r.mr_pool_low, r.mr_pool_high, 2)}, {r.versus_chance}"
        )
        for r in independent.itertuples()
    )
    return [f"- **Independent modalities (0, 0)**: {cells}."]


def _curve_lines(summary: pd.DataFrame) -> list[str]:
    """One line per style (0, then 1) and configuration: its curve and where it is first below chance."""
    lines = []
    for style, words in (
        (0.0, "picture follows the music, style independent of the genre"),
        (1.0, "the genre's visual style as well"),
    ):
        part = summary[summary["style_coupling"] == style]
        for name, rows in part.groupby("config", sort=False):
            below = rows[rows["versus_chance"] == "below chance"]["coupling"]
            lines.append(
                f"- **{name}, style {style:g}** ({words}): {_curve_text(rows)}. "
                + (
                    f"Clearly below chance from coupling {below.min():g} on."
                    if len(below)
                    else "Never clearly below chance."
                )
            )
    return lines


def _style_lines(summary: pd.DataFrame) -> list[str]:
    """The line on what the genre's style alone adds (coupling 0, style 1); none without that point."""
    style1 = summary[(summary["style_coupling"] == 1) & (summary["coupling"] == 0)]
    if not len(style1):
        return []
    leak = [r.config for r in style1.itertuples() if r.versus_chance == "below chance"]
    return [
        "- **What style adds**: at coupling 0 with the genre's style, "
        + (
            f"{', '.join(leak)} {'retrieves' if len(leak) == 1 else 'retrieve'} below chance: the genre's "
            "look alone pairs audio with video."
            if leak
            else "no configuration retrieves below chance: the genre's look alone does not pair them."
        )
    ]


def _paper_lines(summary: pd.DataFrame) -> list[str]:
    """The line on paper_baseline: at how many points it collapsed, is at chance or below it."""
    raw = summary[summary["config"] == "paper_baseline"]
    if not len(raw):
        return []
    counts = raw["versus_chance"].value_counts()
    where = ", ".join(f"{verdict} at {counts[verdict]}" for verdict in counts.index)
    return [
        f"- **The paper's configuration on raw features** (paper_baseline): {where} of {len(raw)} points. "
        + (
            "It never learns, wherever the picture follows the sound: the paper's result, reproduced "
            "under control."
            if "below chance" not in counts
            else "It is not at chance everywhere."
        )
    ]
