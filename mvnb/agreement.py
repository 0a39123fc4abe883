"""Metadata agreement: do the neighbours make sense? The fraction of a seed's k neighbours that
share its genre, and their mean tag Jaccard, each next to its exact chance level (the same
quantity averaged over every item the seed could have retrieved), as the agreement table of
notebook 05 (`browse_agreement.md/.csv/.png`), its note, findings and figure.

The agreement table's seeds are the **test** items, and the gallery is every other video of the
corpus (`mvnb.neighbours.search`), so a learned embedding is judged on videos its heads never
saw: with several fold rotations, a test item is scored with the runs of the rotation that tests
it (its video's test rotation, `mvnb.corpus.rotation_tested`), and the frozen rows take the
same test items. Training seeds (the first rotation's training split, scored with its runs)
stand beside them, labelled, since there a learned embedding may only have fitted. Means come
with 95 % intervals from a bootstrap over the seeds' videos, within rotations, pooled over
healthy training runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mvnb.corpus import rotation_split, rotation_tested
from mvnb.embeddings import FROZEN, LEARNED
from mvnb.io import format_interval
from mvnb.metrics import BOOTSTRAP_DRAWS, bootstrap_interval, is_collapsed
from mvnb.neighbours import CROSS_MODAL, LEVELS, Catalogue, search
from mvnb.results import usable_seeds, versus_chance

AGREEMENT_SPLITS = ("test", "train")  # the agreement table's seeds: test items, training items beside
_CHUNK_ELEMENTS = 1 << 22  # seeds × items per block of `metadata_agreement`, as in `cosine_neighbours`


# --------------------------------------------------------------------------- per seed


def tag_matrix(tags: Sequence) -> tuple[np.ndarray, list[str]]:
    """`(n, n_tags)` bool membership of `;`-separated tag strings (NaN or "" is no tag), and the
    vocabulary."""
    sets = [
        set(t for t in str(text).split(";") if t.strip()) if isinstance(text, str) else set() for text in tags
    ]
    vocabulary = sorted(set().union(*sets)) if sets else []
    column = {tag: j for j, tag in enumerate(vocabulary)}
    matrix = np.zeros((len(sets), len(vocabulary)), dtype=bool)
    for i, s in enumerate(sets):
        matrix[i, [column[t] for t in s]] = True
    return matrix, vocabulary


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(p, q)` Jaccard similarity |A ∩ B| / |A ∪ B| between the rows of bool `(p, t)` and `(q, t)`;
    two empty sets count 0 (no shared evidence)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def metadata_agreement(seeds, neighbours, genres, tags, groups) -> pd.DataFrame:
    """Per seed, how well its neighbours agree with its metadata, and the chance level of that.

    seeds: `(q,)` item index of each seed; neighbours: `(q, k)` item indices of its neighbours;
        genres, tags (`;`-separated), groups (video ids): `(n,)` per item. Seeds and neighbours
        index the same items (a cross-modal search indexes segments or videos on both sides).
    Returns q rows: `genre` (fraction of the k neighbours with the seed's genre), `tags` (their
    mean tag Jaccard with the seed), and `genre_chance`, `tags_chance`: the same averaged over
    every item outside the seed's group, what k neighbours drawn at random would score in
    expectation. Genre columns are NaN where a genre is missing.
    """
    seeds, neighbours = np.asarray(seeds, dtype=np.int64), np.asarray(neighbours, dtype=np.int64)
    genres = pd.Series(np.asarray(genres, dtype=object))
    known = genres.notna().to_numpy()
    codes = pd.factorize(genres)[0]
    tag_rows, _ = tag_matrix(tags)
    group_codes = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))[0]
    columns = {name: np.empty(len(seeds)) for name in ("genre", "tags", "genre_chance", "tags_chance")}
    step = max(1, _CHUNK_ELEMENTS // max(len(codes), 1))  # seeds per block: memory O(n) per seed
    for lo in range(0, len(seeds), step):
        block, near = seeds[lo : lo + step], neighbours[lo : lo + step]
        rows = slice(lo, lo + len(block))
        eligible = group_codes[block][:, None] != group_codes[None, :]
        similarity = jaccard(tag_rows[block], tag_rows)
        n_eligible = eligible.sum(1)
        columns["genre"][rows] = (codes[near] == codes[block][:, None]).mean(1)
        columns["tags"][rows] = np.take_along_axis(similarity, near, axis=1).mean(1)
        same_genre = (codes[block][:, None] == codes[None, :]) & eligible
        columns["genre_chance"][rows] = same_genre.sum(1) / n_eligible
        columns["tags_chance"][rows] = (similarity * eligible).sum(1) / n_eligible
    table = pd.DataFrame(columns)
    table.loc[~known[seeds], ["genre", "genre_chance"]] = np.nan
    return table


# --------------------------------------------------------------------------- the agreement table


def agreement_rows(
    catalogue: Catalogue,
    name: str,
    level: str,
    k: int,
    gallery: str | None,
    config: str | None,
    run: tuple[int, int] | None,
    seeds: np.ndarray,
    aggregate: str = "mean",
) -> pd.DataFrame:
    """The seed items `seeds` at `level`, each against every other video's items: `metadata_agreement`'s
    columns plus the seed's `item` index and `video_id`, one row per seed."""
    items = catalogue.items(level)
    genres = items["genre"] if "genre" in items else pd.Series([np.nan] * len(items))
    tags = items["tags"] if "tags" in items else pd.Series([""] * len(items))
    seeds, indices, _ = search(catalogue, name, level, k, gallery, config, run, seeds, aggregate)
    table = metadata_agreement(seeds, indices, genres, tags, catalogue.groups(level))
    return table.assign(item=seeds, video_id=catalogue.groups(level)[seeds])


def agreement_seeds(catalogue: Catalogue, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Per item at `level`: the rotation among `catalogue.rotations` that tests it (−1: none), and whether
    it trains in the first of them. `(tested (n,) int, train (n,) bool)`."""
    folds = catalogue.items(level)["fold"].to_numpy()
    train = rotation_split(folds, catalogue.rotations[0]) == "train"
    return rotation_tested(folds, catalogue.rotations), train


def agreement_table(
    catalogue: Catalogue,
    k: int = 3,
    levels: Sequence[str] = LEVELS,
    aggregate: str = "mean",
    n_draws: int = BOOTSTRAP_DRAWS,
    draw_seed: int = 0,
) -> pd.DataFrame:
    """Metadata agreement of every embedding at each level, test items as seeds, training items beside.

    One row per level and search (frozen embeddings; then per loaded config the learned ones and
    the cross-modal searches `CL_a→CL_v`, `CL_v→CL_a`). Each seed's gallery is every item of the
    other videos of the corpus. The `test` seeds are the items tested by one of the catalogue's
    rotations (`agreement_seeds`), each searched in the runs of its own rotation; the `train`
    seeds are the first rotation's training items, in that rotation's runs; frozen rows take the
    same seeds. For each of `AGREEMENT_SPLITS`, pooled over the config's healthy training runs:
    `<split>_genre`, `<split>_tags` (mean over the split's seeds) with `_low`, `_high` (95 %
    interval from a bootstrap over the seeds' videos within rotations, `metrics.bootstrap_interval`),
    `_chance` (the mean chance level) and `_versus_chance` ("above chance", "at chance", "below
    chance": the interval of agreement − chance, paired per seed, against 0); `<split>_seeds`,
    `<split>_videos` (distinct seed items and their videos). Also `level, embedding, config, runs`
    (training runs), `collapsed` ("k of n runs collapsed" or "none"). A run whose embedding (either
    one, for a cross-modal search) has collapsed (`metrics.is_collapsed`) is left out; with too few
    healthy runs left (`results.usable_seeds`) the row has no numbers.
    """
    rows = []
    for level in levels:
        tested, train = agreement_seeds(catalogue, level)
        for name, gallery, config in _searches(catalogue):
            runs, healthy, note = _healthy_runs(catalogue, name, gallery, config, level, aggregate)
            parts = _seed_agreement(
                catalogue, (name, gallery, config), level, k, aggregate, healthy, tested, train
            )
            row = {
                "level": level,
                "embedding": name if gallery is None else f"{name}→{gallery}",
                "config": config or "frozen",
                "runs": len(runs),
                "collapsed": note or "none",
            }
            rows.append(row | _split_cells(parts, n_draws, draw_seed))
    return pd.DataFrame(rows)


def _searches(catalogue: Catalogue) -> list[tuple[str, str | None, str | None]]:
    """Every search of the agreement table as `(query embedding, gallery embedding or None for the
    same, config or None for frozen)`: the frozen embeddings, then per loaded config the learned
    ones and the cross-modal searches."""
    searches = [(name, None, None) for name in FROZEN]
    for config in catalogue.configs:
        searches += [(name, None, config) for name in LEARNED] + [(q, g, config) for q, g in CROSS_MODAL]
    return searches


def _healthy_runs(
    catalogue: Catalogue, name: str, gallery: str | None, config: str | None, level: str, aggregate: str
) -> tuple[list, list, str]:
    """`(runs, healthy, note)`: the `(rotation, seed)` of every run of `config` (`[None]` for a frozen
    search), those whose embeddings of the search have not collapsed, as far as `results.usable_seeds`
    keeps them, and its note on the collapsed ones."""
    runs = catalogue.run_keys(config) if config else [None]
    names = {name, gallery or name}  # both sides of a cross-modal search

    def collapsed(run) -> bool:
        return any(is_collapsed(catalogue.embedding(e, level, config, run, aggregate)) for e in names)

    usable, note = usable_seeds(pd.Series([collapsed(run) for run in runs]))
    return runs, [run for run, ok in zip(runs, usable, strict=True) if ok], note


def _seed_agreement(
    catalogue: Catalogue,
    query: tuple[str, str | None, str | None],
    level: str,
    k: int,
    aggregate: str,
    healthy: list,
    tested: np.ndarray,
    train: np.ndarray,
) -> dict[str, list[pd.DataFrame]]:
    """Per split of `AGREEMENT_SPLITS`, one `agreement_rows` frame per healthy run of the search
    `query` (`_searches`), with the `rotation` each seed was scored in: the test items of the run's
    rotation, and the first rotation's training items in its runs. tested `(n,)` int and train
    `(n,)` bool, per item at `level`: `agreement_seeds`."""
    name, gallery, config = query
    first = catalogue.rotations[0]
    parts = {split: [] for split in AGREEMENT_SPLITS}
    for run in healthy:
        mine = tested >= 0 if run is None else tested == run[0]
        beside = train if run is None or run[0] == first else np.zeros_like(train)
        found = agreement_rows(
            catalogue, name, level, k, gallery, config, run, np.flatnonzero(mine | beside), aggregate
        )
        seeds = found["item"].to_numpy()
        parts["test"].append(found[mine[seeds]].assign(rotation=tested[seeds[mine[seeds]]]))
        parts["train"].append(found[beside[seeds]].assign(rotation=first))
    return parts


def _split_cells(parts: dict[str, list[pd.DataFrame]], n_draws: int, seed: int) -> dict:
    """The agreement table's cells of one search, split by split: `<split>_seeds`, `<split>_videos`
    and `_agreement_cells` of genre and tags over the seeds `parts` holds (`_seed_agreement`)."""
    row = {}
    for split in AGREEMENT_SPLITS:
        part = pd.concat(parts[split], ignore_index=True) if parts[split] else None
        row |= {
            f"{split}_seeds": 0 if part is None else part["item"].nunique(),
            f"{split}_videos": 0 if part is None else part["video_id"].nunique(),
        }
        for metric in ("genre", "tags"):
            row |= _agreement_cells(part, metric, f"{split}_{metric}", n_draws, seed)
    return row


def _agreement_cells(part: pd.DataFrame | None, metric: str, prefix: str, n_draws: int, seed: int) -> dict:
    """`prefix`, `_low`, `_high`, `_chance`, `_versus_chance` of one metric over the seeds in `part`
    (NaN when there are none); videos are resampled within `part`'s `rotation`s."""
    cells = {
        prefix: np.nan,
        f"{prefix}_low": np.nan,
        f"{prefix}_high": np.nan,
        f"{prefix}_chance": np.nan,
        f"{prefix}_versus_chance": "—",
    }
    if part is None:
        return cells | {f"{prefix}_versus_chance": "collapsed"}
    part = part[part[metric].notna()]
    if part.empty:
        return cells
    estimate, low, high = bootstrap_interval(
        part[metric], part["video_id"], "mean", part["rotation"], n_draws, seed=seed
    )
    above = part[metric] - part[f"{metric}_chance"]  # paired per seed
    _, above_low, above_high = bootstrap_interval(
        above, part["video_id"], "mean", part["rotation"], n_draws, seed=seed
    )
    return {
        prefix: estimate,
        f"{prefix}_low": low,
        f"{prefix}_high": high,
        f"{prefix}_chance": part[f"{metric}_chance"].mean(),
        f"{prefix}_versus_chance": versus_chance(above_low, above_high, 0.0),
    }


def format_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """`agreement_table` for reading: test-split seeds first (mean [95 % interval], chance, verdict), then the
    train-split seeds' means with their intervals; per split the number of seed items and of their distinct
    videos (`test_videos`, `train_videos`)."""

    def cell(prefix: str) -> list[str]:
        return [
            "collapsed" if verdict == "collapsed" else format_interval(m, lo, hi, 3)
            for m, lo, hi, verdict in zip(
                table[prefix],
                table[f"{prefix}_low"],
                table[f"{prefix}_high"],
                table[f"{prefix}_versus_chance"],
                strict=True,
            )
        ]

    out = {"level": table["level"], "embedding": table["embedding"], "config": table["config"]}
    for split in AGREEMENT_SPLITS:
        label = f"{split}-split seeds"
        for metric, words in (("genre", "genre@k"), ("tags", "tag Jaccard@k")):
            prefix = f"{split}_{metric}"
            out[f"{words}, {label}"] = cell(prefix)
            if split == "test":  # the result; the training seeds stand beside it, as means only
                out[f"{words} chance"] = table[f"{prefix}_chance"].map(
                    lambda x: "—" if not np.isfinite(x) else f"{x:.3f}"
                )
                out[f"{words} vs chance"] = table[f"{prefix}_versus_chance"]
        out[label] = table[f"{split}_seeds"]
        out[f"{split}_videos"] = table[f"{split}_videos"]
    out |= {"runs": table["runs"], "collapsed": table["collapsed"]}
    return pd.DataFrame(out)


def agreement_note(table: pd.DataFrame, k: int, rotations: Sequence[int]) -> str:
    """One markdown line on what the agreement table measured: its seeds, gallery, rotations and intervals.

    rotations: the catalogue's (`Catalogue.rotations`), the first giving the training seeds.
    """
    counts = table[table["config"] == "frozen"].drop_duplicates("level").set_index("level")
    seeds = "; ".join(
        f"{level} level: {r['test_seeds']} test seeds of {r['test_videos']} videos "
        f"({r['train_seeds']} training seeds of {r['train_videos']} videos beside)"
        for level, r in counts.iterrows()
    )
    plural = "s" if len(rotations) > 1 else ""
    return (
        f"k = {k} neighbours per seed; the gallery is every item of the other videos of the corpus. {seeds}. "
        f"Test seeds come from rotation{plural} {', '.join(map(str, rotations))}, each scored with the runs "
        f"of the rotation that tests it; training seeds are rotation {rotations[0]}'s. Means with 95 % "
        f"intervals from a bootstrap over the seeds' videos within rotations, pooled over healthy training "
        f"runs; 'vs chance' reads the interval of agreement − chance."
    )


def agreement_findings(table: pd.DataFrame, split: str = "test") -> str:
    """Markdown, generated from `agreement_table`: per level and metric, which searches agree with the
    metadata above chance, at chance or below it on `split`'s seeds (the paired interval of agreement −
    chance)."""
    lines = []
    for level, part in table.groupby("level", sort=False):
        for metric, words in (("genre", "genre@k"), ("tags", "tag Jaccard@k")):
            verdicts = part[f"{split}_{metric}_versus_chance"]
            named = [
                f"{v}: "
                + ", ".join(
                    f"`{e}`" + ("" if c == "frozen" else f" ({c})")
                    for e, c in zip(
                        part.loc[verdicts == v, "embedding"], part.loc[verdicts == v, "config"], strict=True
                    )
                )
                for v in ("above chance", "at chance", "below chance", "collapsed", "—")
                if (verdicts == v).any()
            ]
            lines.append(f"- **{level} level, {words}, {split}-split seeds**: " + "; ".join(named) + ".")
    return "\n".join(lines)


def plot_agreement(table: pd.DataFrame):
    """Bar charts of genre agreement and tag Jaccard of the test seeds per embedding and level, with their
    95 % intervals; chance as a tick, the training seeds' means as hollow circles."""
    import matplotlib.pyplot as plt

    levels = list(dict.fromkeys(table["level"]))
    fig, axes = plt.subplots(
        len(levels), 2, figsize=(12, 2.2 + 2.3 * len(levels)), squeeze=False, constrained_layout=True
    )
    for row, level in zip(axes, levels, strict=True):
        part = table[table["level"] == level].reset_index(drop=True)
        labels = [
            e if c == "frozen" else f"{e}\n{c}"
            for e, c in zip(part["embedding"], part["config"], strict=True)
        ]
        x = np.arange(len(part))
        configs = list(dict.fromkeys(part["config"]))
        colours = ["tab:gray" if c == "frozen" else f"C{configs.index(c)}" for c in part["config"]]
        for ax, metric, title in (
            (row[0], "genre", "same genre among k neighbours"),
            (row[1], "tags", "mean tag Jaccard"),
        ):
            mean = part[f"test_{metric}"].to_numpy(dtype=float)
            spread = np.vstack([mean - part[f"test_{metric}_low"], part[f"test_{metric}_high"] - mean])
            ax.bar(
                x,
                np.nan_to_num(mean),
                yerr=np.nan_to_num(spread),
                color=colours,
                capsize=2,
                label="test-split seeds",
            )
            ax.scatter(
                x, part[f"test_{metric}_chance"], marker="_", s=300, color="black", zorder=3, label="chance"
            )
            ax.scatter(
                x,
                part[f"train_{metric}"],
                marker="o",
                facecolors="none",
                edgecolors="black",
                zorder=3,
                label="train-split seeds",
            )
            ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{level} level: {title}", fontsize=10)
            ax.set_ylim(0, 1)
        row[0].legend(loc="upper right", fontsize=8)
    return fig
