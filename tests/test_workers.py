"""No orphans: the workers of every pool (preprocess, synth, the feature extractor's DataLoader)
exit within seconds once their parent is killed with SIGKILL, mid-work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from features.tiny_store import write_store
from test_segments import write_corpus

REPO = Path(__file__).resolve().parent.parent
GRACE_S = 10.0


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (a zombie has exited: it only waits to be reaped)."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


def kill_mid_work_and_watch(code: str, workers: int = 2) -> list[psutil.Process]:
    """Run `code` in a child Python, SIGKILL it once it has `workers` worker processes, and
    return those of its descendants still running `GRACE_S` later."""
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    parent = psutil.Process(child.pid)
    deadline = time.monotonic() + 120
    descendants: list[psutil.Process] = []
    while child.poll() is None and time.monotonic() < deadline:
        descendants = parent.children(recursive=True)
        if len(descendants) >= workers:
            break
        time.sleep(0.05)
    assert child.poll() is None, (
        f"the run ended before its workers were seen:\n{child.stderr.read().decode()[-2000:]}"
    )
    assert len(descendants) >= workers, "no worker processes appeared within 120 s"
    time.sleep(0.5)  # let them get busy
    descendants = parent.children(recursive=True)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    gone_by = time.monotonic() + GRACE_S
    while alive(descendants) and time.monotonic() < gone_by:
        time.sleep(0.1)
    left = alive(descendants)
    for process in left:  # leave nothing behind, whatever the outcome
        process.kill()
    return left


def test_preprocess_workers_exit_with_their_killed_parent(tmp_path):
    write_corpus(tmp_path / "corpus", 6, seconds=12.0)
    code = (
        f"from mvnb.segments import preprocess; preprocess({str(tmp_path / 'corpus' / 'videos')!r}, "
        f"{str(tmp_path / 'corpus' / 'metadata.csv')!r}, {str(tmp_path / 'store')!r}, workers=2, "
        f"progress=False, "
        f"segments=4, seconds=2.0, size=(256, 144))"
    )
    assert kill_mid_work_and_watch(code) == []


def test_synth_workers_exit_with_their_killed_parent(tmp_path):
    code = (
        "from mvnb.synth import SynthSpec, make_corpus; "
        f"make_corpus({str(tmp_path / 'synth')!r}, SynthSpec(n_videos=8, min_seconds=6.0, max_seconds=8.0, "
        f"size=(128, 72)), workers=2)"
    )
    assert kill_mid_work_and_watch(code) == []


@pytest.mark.usefixtures("one_torch_thread")
def test_feature_extraction_workers_exit_with_their_killed_parent(tmp_path):
    write_store(tmp_path / "store", {f"v{i}": 6 for i in range(4)})
    code = (
        f"from mvnb.features import extract_features; extract_features({str(tmp_path / 'store')!r}, "
        f"views=2, frames=4, "
        "video_weights='random', batch_size=1, workers=2, progress=False)"
    )
    assert kill_mid_work_and_watch(code) == []
