"""Which encoder weights made a result, said the same way on every table, CSV and figure.

Every result of the report starts from the frozen features, so the weights are read where the
feature store records them (each store's meta.json, `mvnb.features.read_meta`), never typed:

    weights = provenance.of_store(store)        # a segment store with features
    weights.caption                             # 'R(2+1)D-18: random init (seed 0), not Kinetics-400 ·
    musicnn: MSD_musicnn'
    weights.markdown(table.to_markdown())       # a .md table under its caption line
    weights.stamp(table).to_csv(...)            # a CSV with the four columns of `COLUMNS`
    weights.save_figure(fig, path)              # a PNG with the caption as footnote and in its metadata
    weights.plotly(fig)                         # a plotly figure with the caption under it

Exempt are files that hold no model output (the corpus, preprocessing and timing tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mvnb.io import save_figure

COLUMNS = ("video_weights", "video_weights_sha256", "audio_weights", "audio_weights_sha256")
PNG_KEY = "Weights"  # the PNG text chunk that carries the caption
VIDEO_ENCODER = "R(2+1)D-18"


@dataclass(frozen=True)
class Weights:
    """The audio and video weights behind a result, in words, with their sha256 prefixes.

    video: e.g. "R(2+1)D-18: Kinetics-400" or "R(2+1)D-18: random init (seed 0), not Kinetics-400";
    audio: e.g. "musicnn: MSD_musicnn"; *_sha256: the first 16 hex digits of the weights' sha256.
    """

    video: str
    audio: str
    video_sha256: str = ""
    audio_sha256: str = ""

    @property
    def caption(self) -> str:
        """One line naming both: 'R(2+1)D-18: … · musicnn: …'."""
        return f"{self.video} · {self.audio}"

    def columns(self) -> dict[str, str]:
        """The CSV columns (`COLUMNS`) and their values."""
        return dict(zip(COLUMNS, (self.video, self.video_sha256, self.audio, self.audio_sha256), strict=True))

    def stamp(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` with the `COLUMNS` appended (the same value on every row), for a CSV."""
        return table.assign(**self.columns())

    def markdown(self, body: str) -> str:
        """`body` (markdown) under the caption line 'Weights: …'."""
        return f"Weights: {self.caption}\n\n{body.rstrip()}\n"

    def footnote(self, fig):
        """Write the caption under a matplotlib figure (saved with `bbox_inches="tight"`, it stays inside);
        returns `fig`."""
        fig.text(
            0.01, 0.0, f"weights: {self.caption}", ha="left", va="top", fontsize=7, color="0.3", gid="weights"
        )
        return fig

    def save_figure(self, fig, path: str | Path, dpi: int = 120) -> Path:
        """Save `fig` as a PNG at `path`, atomically, with the caption as footnote and as its `PNG_KEY` text
        chunk."""
        self.footnote(fig)
        return save_figure(fig, path, dpi=dpi, metadata={PNG_KEY: self.caption})

    def plotly(self, fig):
        """Put the caption under a plotly figure, as an annotation below its plot area; returns `fig`."""
        fig.add_annotation(
            text=f"weights: {self.caption}",
            xref="paper",
            yref="paper",
            x=0,
            y=-0.04,
            xanchor="left",
            yanchor="top",
            showarrow=False,
            font=dict(size=11, color="#555"),
        )
        return fig


def video_label(provenance: dict) -> str:
    """The video encoder's weights in words, from a feature store's `provenance` record."""
    kind = provenance.get("weights")
    if kind == "kinetics400":
        return f"{VIDEO_ENCODER}: Kinetics-400"
    if kind == "random":
        return f"{VIDEO_ENCODER}: random init (seed {provenance.get('seed')}), not Kinetics-400"
    if kind == "file":
        return f"{VIDEO_ENCODER}: weights file {Path(str(provenance.get('source'))).name}"
    return f"{VIDEO_ENCODER}: {kind}"


def audio_label(provenance: dict) -> str:
    """The audio encoder's weights in words ('musicnn: MSD_musicnn'), from a feature store's `provenance`
    record."""
    return f"{provenance.get('encoder', 'musicnn')}: {provenance.get('weights') or provenance.get('name')}"


def of_store(data_dir: str | Path, audio_data_dir: str | Path | None = None) -> Weights:
    """The weights of the feature stores of the segment store `data_dir` (audio from `audio_data_dir` when
    given).

    Raises FileNotFoundError naming the store when a modality has no features.
    """
    from mvnb.features import feature_dir, read_meta

    records = {}
    for modality, folder in (("audio", audio_data_dir or data_dir), ("video", data_dir)):
        meta = read_meta(feature_dir(folder, modality))
        if meta is None:
            raise FileNotFoundError(
                f"no {modality} features in {feature_dir(folder, modality)}: their weights are unknown; "
                f"run notebook 02 (features) first"
            )
        records[modality] = meta["provenance"]
    return Weights(
        video_label(records["video"]),
        audio_label(records["audio"]),
        records["video"].get("sha256", "")[:16],
        records["audio"].get("sha256", "")[:16],
    )
