"""Shared fixtures. The expensive one is `quick_report`: a single quick-profile run of the whole
report into a temporary folder, reused by the notebook smoke tests and by any test that needs
pipeline outputs, so the suite pays for the pipeline once."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mvnb.device import torch_threads


@dataclass
class QuickReport:
    root: Path  # data/, runs/ and figures/ live here
    returncode: int
    log: str

    @property
    def timings(self) -> pd.DataFrame:
        path = self.root / "runs" / "timings.csv"
        return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["notebook", "status", "seconds"])


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory) -> QuickReport:
    """`python -m mvnb report --profile quick`, run once, writing only under a temporary folder."""
    root = tmp_path_factory.mktemp("quick_report")
    cmd = [
        sys.executable,
        "-m",
        "mvnb",
        "report",
        "--profile",
        "quick",
        "--out",
        str(root / "runs"),
        "--figures",
        str(root / "figures"),
        "-p",
        f"data_root={root / 'data'}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return QuickReport(root, proc.returncode, proc.stdout + proc.stderr)


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: a second thread gains nothing and, on shared cores, costs many times the work."""
    with torch_threads(1):
        yield
