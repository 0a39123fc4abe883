"""Worker processes that never outlive their parent.

A process pool's workers wait on a queue that only their parent feeds. When the parent is
killed outright (SIGKILL, the OOM killer), nothing tells them: they stay asleep, re-parented to
init, holding their memory for good. Every pool in mvnb (preprocess, synth, previews, the
feature extractor's DataLoader) therefore starts its workers with `exit_with_parent`.
"""

from __future__ import annotations

import os
import threading
import time

POLL_S = 0.5  # how often a worker looks at its parent: it exits at most this long after the parent died


def exit_with_parent(*_) -> None:
    """Make the calling (worker) process exit soon after its parent dies; a pool initializer.

    A daemon thread polls the parent's pid, which changes when the process is re-parented, and
    then ends the process at once with `os._exit` (no cleanup runs: a file it was writing is an
    `atomic_write` temporary, which the next run removes). Any arguments are ignored, so it
    also serves as a DataLoader `worker_init_fn`, which is passed the worker's number.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
