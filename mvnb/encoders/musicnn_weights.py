"""The pretrained weights of the `musicnn` wheel: its two models (`MODELS`) and their tags (`LABELS`, in
output order), where their TF checkpoints lie in the installed distribution (`checkpoint_files`), their
provenance record, and the mapping of the TF variables onto `mvnb.encoders.musicnn.Musicnn`'s state dict.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import torch

from mvnb.io import sha256_file

MODELS = ("MSD_musicnn", "MTT_musicnn")
INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"

MSD_LABELS = [
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
]
MTT_LABELS = [
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
]
LABELS = {"MSD_musicnn": MSD_LABELS, "MTT_musicnn": MTT_LABELS}


def checkpoint_files(
    name: str,
) -> tuple[importlib.metadata.Distribution, dict[str, importlib.metadata.PackagePath]]:
    """The installed `musicnn` distribution and its `.index` / `.data-…` files for model `name`."""
    if name not in MODELS:
        raise ValueError(f"unknown musicnn model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        dist = importlib.metadata.distribution("musicnn")
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"musicnn's pretrained weights come from the musicnn package, which is not "
            f"installed; install it with: {INSTALL_HINT}"
        ) from None
    wanted = {"index": f"musicnn/{name}/.index", "data": f"musicnn/{name}/.data-00000-of-00001"}
    files = {str(f): f for f in dist.files or []}
    missing = [
        path
        for path in wanted.values()
        if path not in files or not Path(dist.locate_file(files[path])).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"musicnn {dist.version} lacks {', '.join(missing)}; reinstall it with: {INSTALL_HINT}"
        )
    return dist, {role: files[path] for role, path in wanted.items()}


def musicnn_provenance(name: str = "MSD_musicnn") -> dict:
    """Where model `name`'s weights come from: name, source files, sha256 of the data file, package version.

    `source` lists the checkpoint files as paths within the installed `musicnn` distribution.
    """
    dist, files = checkpoint_files(name)
    digest = sha256_file(dist.locate_file(files["data"]))
    return {
        "name": name,
        "source": [str(files["index"]), str(files["data"])],
        "sha256": digest,
        "package": "musicnn",
        "version": dist.version,
    }


def tf_state_dict(checkpoint: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map musicnn's TF variable names and layouts onto `Musicnn`'s state dict.

    TF names layers in creation order: batch_normalization (input), _1–_5 (front end),
    _6–_8 (mid end), _9 (back end), _10 (penultimate); conv2d, _1–_4 (front end), _5–_7
    (mid end); dense, dense_1. Conv kernels are `(h, w, in, out)`, dense kernels `(in, out)`.
    """

    def bn(tf_name: str, module: str) -> dict[str, np.ndarray]:
        return {
            f"{module}.weight": checkpoint[f"{tf_name}/gamma"],
            f"{module}.bias": checkpoint[f"{tf_name}/beta"],
            f"{module}.running_mean": checkpoint[f"{tf_name}/moving_mean"],
            f"{module}.running_var": checkpoint[f"{tf_name}/moving_variance"],
        }

    def suffix(i: int) -> str:
        return "" if i == 0 else f"_{i}"

    state = bn("batch_normalization", "input_bn")
    for i in range(5):
        kernel = checkpoint[f"conv2d{suffix(i)}/kernel"]
        state[f"frontend.{i}.conv.weight"] = kernel.transpose(3, 2, 0, 1)
        state[f"frontend.{i}.conv.bias"] = checkpoint[f"conv2d{suffix(i)}/bias"]
        state.update(bn(f"batch_normalization_{i + 1}", f"frontend.{i}.bn"))
    for i in range(3):
        kernel = checkpoint[f"conv2d_{i + 5}/kernel"]  # (7, in, 1, out): the mel axis holds the channels
        state[f"midend.{i}.conv.weight"] = kernel[:, :, 0, :].transpose(2, 1, 0)
        state[f"midend.{i}.conv.bias"] = checkpoint[f"conv2d_{i + 5}/bias"]
        state.update(bn(f"batch_normalization_{i + 6}", f"midend.{i}.bn"))
    state.update(bn("batch_normalization_9", "backend_bn"))
    state.update(bn("batch_normalization_10", "dense_bn"))
    for tf_name, module in (("dense", "dense"), ("dense_1", "output")):
        state[f"{module}.weight"] = checkpoint[f"{tf_name}/kernel"].T
        state[f"{module}.bias"] = checkpoint[f"{tf_name}/bias"]
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()}
