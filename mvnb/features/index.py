"""What each segment's files hold, as a feature store records it: `segment_index` (the size and
mtime of a segment's mp4 and wav, and the sha256 of their bytes) and its `fingerprint`. Equal
fingerprints, equal inputs; a segment whose content changed is recomputed, never mixed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from mvnb.io import sha256_file


def _stat(path: Path) -> str:
    """`"size:mtime_ns"` of a file, or "" when it is missing."""
    try:
        st = path.stat()
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def _content_sha256(paths: list[Path]) -> str:
    """sha256 over the sha256 of each file in `paths` ("" when one is missing)."""
    digest = hashlib.sha256()
    try:
        for path in paths:
            digest.update(bytes.fromhex(sha256_file(path)))
    except OSError:
        return ""
    return digest.hexdigest()


def segment_index(
    data_dir: Path, manifest: pd.DataFrame, cached: pd.DataFrame | None = None, progress: bool = True
) -> pd.DataFrame:
    """What each manifest segment's files hold: `segment_id, stat, content`, in manifest order.

    `stat` is size:mtime of the mp4 and the wav; `content` the sha256 of their bytes, reused
    from `cached` (a previous index) where the stat is unchanged, else read and hashed.
    """
    paths = [
        (data_dir / v, data_dir / a)
        for v, a in zip(manifest["video_path"], manifest["audio_path"], strict=True)
    ]
    stats = ["|".join(_stat(p) for p in pair) for pair in paths]
    known = (
        {}
        if cached is None
        else dict(zip(zip(cached["segment_id"], cached["stat"], strict=True), cached["content"], strict=True))
    )
    contents = [known.get((sid, stat)) for sid, stat in zip(manifest["segment_id"], stats, strict=True)]
    todo = [i for i, c in enumerate(contents) if c is None]
    for i in tqdm(
        todo, desc="hashing segments", unit="seg", disable=not progress or len(todo) < 100, leave=False
    ):
        contents[i] = _content_sha256(list(paths[i]))
    return pd.DataFrame({"segment_id": manifest["segment_id"].to_numpy(), "stat": stats, "content": contents})


def fingerprint(index: pd.DataFrame) -> str:
    """sha256 of the ordered segment ids and contents: equal fingerprints, equal inputs."""
    digest = hashlib.sha256()
    for sid, content in zip(index["segment_id"], index["content"], strict=True):
        digest.update(f"{sid}\t{content}\n".encode())
    return digest.hexdigest()
