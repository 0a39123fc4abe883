"""Writing and reading files, for every module that owns an artefact on disk.

Every write is atomic: the content goes to a temporary sibling, renamed onto the target only once
complete, so no reader ever sees half a file and a failed write leaves nothing behind. JSON is
UTF-8 with one space of indentation; CSV has no index. `format_interval` and `mean_sd` are the one
way an estimate is printed in a table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd


def atomic_path(path: Path) -> Path:
    """A temporary sibling of `path`, to be renamed onto it once written completely."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield the temporary path to write `path`'s content to; it replaces `path` only when the
    block finishes, so no reader ever sees half a file, and a failed write leaves nothing."""
    tmp = atomic_path(Path(path))
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) atomically, creating the folder; a file that already holds it is left
    alone (its modification time too). Returns `path`."""
    path, data = Path(path), text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return path


def _json_default(obj):
    """numpy scalars as Python numbers; paths and torch devices as strings."""
    if isinstance(obj, np.generic):
        return obj.item()
    torch = sys.modules.get("torch")  # a run records its device; io itself never imports torch
    if isinstance(obj, os.PathLike) or (torch is not None and isinstance(obj, torch.device)):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | Path, obj) -> Path:
    """Write `obj` as JSON (one-space indent, UTF-8, numpy scalars and paths allowed), atomically."""
    return write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default) + "\n")


def read_json(path: str | Path) -> dict | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_csv(path: str | Path, table: pd.DataFrame) -> Path:
    """Write `table` as CSV without its index, atomically."""
    return write_text(path, table.to_csv(index=False))


def save_torch(path: str | Path, obj) -> Path:
    """`torch.save(obj)` to `path`, atomically."""
    import torch

    with atomic_write(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int = 120, metadata: dict | None = None) -> Path:
    """Save a matplotlib figure as a PNG at `path` (tight bounding box, `metadata` as text chunks),
    atomically, creating the folder. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata=metadata)
    return path


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def format_interval(estimate: float, low: float, high: float, digits: int = 1) -> str:
    """'17.0 [12.5, 21.0]': an estimate and its 95 % interval; '—' when undefined."""
    if not np.isfinite(estimate):
        return "—"
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def mean_sd(values: pd.Series, digits: int = 1) -> str:
    """'mean ± sd' over runs ('mean' alone for one run, '-' for none)."""
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"
