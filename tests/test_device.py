"""mvnb.device: the precision actually used on a device."""

from __future__ import annotations

from mvnb.device import cpu_supports_bf16, resolve_precision


def test_precision_resolution():
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_supports_bf16() else "fp32")
    assert resolve_precision("fp16", "cuda") == "fp16"  # as a GPU-made feature store records it
