"""The paper's facts: Table 2's values stand beside our frozen rows and the paper's CL configuration only, and
that configuration is the one of the paper's Table 1 baseline."""

import numpy as np
import pandas as pd
from probes.test_labels import manifest
from probes.test_scores import fake_result
from table2.test_intervals import rotations_of

from mvnb import probes, table2
from mvnb.paper import PAPER_CL_CONFIG, PAPER_TABLE1, PAPER_TABLE2


def test_table2_prints_the_papers_values_beside_the_frozen_and_paper_configuration_rows():
    man = manifest(40, seed=6)
    task = probes.genre_task(man)
    rows, results = [], {}
    for embedding, config in [("musicnn", "frozen"), ("CL_agg", PAPER_CL_CONFIG), ("CL_agg", "corrected")]:
        rows.append(
            {
                "embedding": embedding,
                "config": config,
                "rotation": 0,
                "seed": 0,
                "task": "genre",
                "collapsed": False,
            }
        )
        results[(embedding, config, "genre", 0, 0)] = fake_result(task, man, 0)
    table, _ = table2.table2(
        pd.DataFrame(rows), results, {"genre": task}, rotations_of(man), man["video_id"], n_draws=10
    )
    paper = table.set_index(["row", "metric", "level"])["paper"]
    for level in ("segment", "video"):
        assert paper[("musicnn", "auc", level)] == PAPER_TABLE2["musicnn"]["genre"][0]
        assert paper[("CL_agg · paper_baseline", "f1", level)] == PAPER_TABLE2["CL_agg"]["genre"][1]
    assert np.isnan(paper.xs("CL_agg · corrected", level="row")).all()


def test_the_papers_cl_configuration_is_its_table1_baseline_and_its_values_are_scores():
    assert PAPER_TABLE1[PAPER_CL_CONFIG][0].startswith("CL baseline")
    for tasks in PAPER_TABLE2.values():
        assert set(tasks) == {"tags", "genre"}
        assert all(0 < auc < 1 and 0 < f1 < 1 for auc, f1 in tasks.values())
