"""Table 2's intervals: pooled seeds, and resampled test videos, against resampling by hand."""

import numpy as np
import pandas as pd
import pytest
from probes.test_labels import folded_manifest, manifest
from probes.test_scores import fake_result

from mvnb import probes, table2
from mvnb.corpus import rotation_tested
from mvnb.metrics import macro_f1, macro_roc_auc


def rotations_of(man: pd.DataFrame, rotations=(0,)) -> np.ndarray:
    """The rotation that tests each segment's video (−1: none), as notebook 04 passes it to `table2`."""
    return rotation_tested(man["fold"], rotations)


@pytest.mark.parametrize("task_name", ["tags", "genre"])
@pytest.mark.parametrize("level", probes.LEVELS)
def test_row_draws_equal_scores_recomputed_on_explicitly_resampled_videos(task_name, level):
    """Two seeds pooled: a resampled video brings its predictions from both, as many times as it was drawn."""
    man = manifest(40, segments=3, seed=4)
    task = probes.probe_tasks(man)[0][task_name]
    seeds = [fake_result(task, man, s) for s in (1, 2)]
    item_videos, targets, outputs = table2.pooled_outputs(seeds, task, man["video_id"], level)
    videos, weights = table2.resample_test_videos(
        task, rotations_of(man), man["video_id"], n_draws=25, seed=3
    )
    found = table2.row_draws(targets, outputs, item_videos, videos, weights)
    per_video = {v: i for i, v in enumerate(videos)}
    for metric, (estimate, values) in found.items():
        score = macro_roc_auc if metric == "auc" else macro_f1
        assert estimate == pytest.approx(score(targets, outputs[metric]))
        for d, w in enumerate(weights):
            times = w[[per_video[v] for v in item_videos]]
            expected = score(np.repeat(targets, times, 0), np.repeat(outputs[metric], times, 0))
            assert values[d] == pytest.approx(expected, nan_ok=True), (metric, d)


def test_draws_keep_each_rotation_whole():
    """Each resample draws as many test videos from a rotation as it tests, and only from it; untested videos
    never."""
    man = folded_manifest(100, seed=5)
    task = probes.genre_task(man)
    rotations = rotation_tested(man["fold"], [0, 1, 2])
    videos, weights = table2.resample_test_videos(task, rotations, man["video_id"], n_draws=200)
    of_video = man.assign(r=rotations).drop_duplicates("video_id").set_index("video_id")["r"]
    assert set(videos) == set(of_video[of_video >= 0].index)
    for rotation in (0, 1, 2):
        members = (of_video.loc[videos] == rotation).to_numpy()
        assert members.sum() > 3 and (weights[:, members].sum(1) == members.sum()).all()
