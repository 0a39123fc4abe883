"""Running Table 2's probes: each rotation probes its own split, on its own runs, with its own references."""

import numpy as np
from probes.test_labels import folded_manifest
from probes.test_probe import genre_features

from mvnb import embeddings, probes, table2
from mvnb.corpus import manifest_split
from mvnb.runs import run_dir
from table2.test_intervals import rotations_of


def test_each_rotation_probes_its_own_split_on_its_own_runs_and_references(tmp_path):
    """Rotation r's probe trains on r's training videos and predicts r's test fold, with the CL embeddings of
    r's run;
    its prior is r's training prior. A collapsed run of one rotation is flagged for that rotation only."""
    man = folded_manifest(120, seed=8)
    x = genre_features(man, 1.0)
    frozen = embeddings.frozen_embeddings(x[:, :8], x[:, 8:])
    rng = np.random.default_rng(0)
    for rotation, scale in ((0, 1.0), (1, 0.0)):  # rotation 1's run collapsed: every segment on one point
        run = run_dir(tmp_path, "corrected", 0, rotation=rotation)
        run.mkdir(parents=True)
        audio = scale * rng.normal(size=(len(man), 4)) + 1
        np.savez(run / "embeddings.npz", audio=audio, video=audio, segment_index=np.arange(len(man)))
    tasks, _ = probes.probe_tasks(man, [0, 1])
    scores, results, notes = table2.run_table2_probes(
        frozen,
        tmp_path,
        ["corrected"],
        [0, 1],
        [0],
        tasks,
        man,
        probes.ProbeConfig(hidden=(8,), max_epochs=2, patience=1),
    )
    assert not notes
    for rotation in (0, 1):
        split = manifest_split(man, rotation)
        for task in tasks.values():
            result = results[("musicnn", "frozen", task.name, rotation, 0)]
            np.testing.assert_array_equal(result.test_rows, np.flatnonzero((split == "test") & task.labelled))
            assert result.scores["n_train"] == ((split == "train") & task.labelled).sum()
            prior = results[("prior", "reference", task.name, rotation, 0)].test_probs
            np.testing.assert_allclose(
                prior, np.tile(probes.training_prior(task, split, man["video_id"]), (len(prior), 1))
            )
    flags = scores[scores["config"] == "corrected"].groupby("rotation")["collapsed"].all()
    assert flags.to_dict() == {0: False, 1: True}
    table, _ = table2.table2(scores, results, tasks, rotations_of(man, [0, 1]), man["video_id"], n_draws=20)
    cl = table[table["config"] == "corrected"]
    assert (cl["collapsed"] == "1 of 2 runs collapsed").all() and cl["estimate"].isna().all()
    frozen_rows = table[table["config"] == "frozen"]
    assert (frozen_rows["test_videos"] == man.loc[man["fold"] >= 8, "video_id"].nunique()).all()
