"""Where and how tensors are computed: the default device, the precision actually used, its
autocast context, and the number of torch threads.

`default_device` follows torchrun (`LOCAL_RANK`). `resolve_precision` turns a requested precision
("auto", "fp32", "bf16", "fp16") into the one used on a device; `autocast_for` gives its context.
`torch_threads` runs a block with a given number of intra-op threads: small batches (a probe's few
hundred rows, a quick-profile training batch) gain little from a second thread, and where cores are
shared, threads waiting on each other cost several times the work (`benchmarks/bench_probes.py`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # what a user may ask for; resolved to one of the last three


def default_device() -> torch.device:
    """`cuda` when present (under torchrun, the process's own GPU `cuda:LOCAL_RANK`), else `cpu`."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    cpu = getattr(torch._C, "_cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return cpu is not None and any(getattr(cpu, check, lambda: False)() for check in checks)


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The precision actually used: "fp32", "bf16" (CPU or CUDA autocast) or "fp16" (CUDA AMP).

    "auto" picks bf16 autocast on a CPU with native bf16 support, AMP on CUDA (bf16 where the
    GPU supports it, else fp16), and fp32 otherwise. "fp32" and "bf16" are taken as asked, and
    "fp16" too on CUDA (a feature store made on a GPU records it).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise ValueError(f"fp16 autocast is for CUDA; on {device} use bf16 or fp32")
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_supports_bf16() else "fp32"


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision on `device` (a null context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads (None: unchanged), restoring the number before."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
