"""mvnb.gap_diagnosis: the 2x2x2 of the paper's choices."""

import dataclasses

import numpy as np
import pandas as pd

from mvnb import gap, gap_diagnosis, train
from mvnb.config import PROFILES


def test_diagnosis_is_the_full_two_by_two_by_two_in_the_paper_form():
    assert (
        len(gap_diagnosis.DIAGNOSIS) == 8
        and len({gap_diagnosis.diagnosis_name(cell) for cell in gap_diagnosis.DIAGNOSIS}) == 8
    )
    fields = {tuple(sorted(o.items())) for o in gap_diagnosis.DIAGNOSIS.values()}
    assert len(fields) == 8
    assert gap_diagnosis.DIAGNOSIS["sigmoid", "τ = 1", "raw"] == {
        "output": "sigmoid",
        "learnable_temperature": False,
        "input_norm": "none",
    }  # the paper's baseline itself


def test_two_cells_are_sweep_configurations_and_no_others():
    named = {cell: gap_diagnosis.sweep_config(cell) for cell in gap_diagnosis.DIAGNOSIS}
    assert {cell: name for cell, name in named.items() if name} == {
        ("sigmoid", "τ = 1", "raw"): "paper_baseline",
        ("sigmoid", "τ = 1", "standardised"): "paper_std",
    }


def test_reused_cells_are_the_sweeps_runs_at_the_diagnosis_point(quick_report):
    """The cells read from the sweep's runs score what the sweep scored there, seed by seed."""
    figures = quick_report.root / "figures"
    study, cells = pd.read_csv(figures / "gap_study.csv"), pd.read_csv(figures / "gap_diagnosis.csv")
    point = gap_diagnosis.diagnosis_point([tuple(p) for p in PROFILES["quick"]["gap_points"]])
    here = study[(study["coupling"] == point[0]) & (study["style_coupling"] == point[1])]
    for cell in gap_diagnosis.DIAGNOSIS:
        name = gap_diagnosis.sweep_config(cell)
        if name is None:
            continue
        ours = cells[(cells[["output", "tau", "inputs"]] == cell).all(axis=1)].set_index("seed")
        theirs = here[here["config"] == name].set_index("seed")
        assert len(ours) == len(theirs) > 0
        np.testing.assert_array_equal(
            ours["median_rank"], (theirs["median_rank_a2v"] + theirs["median_rank_v2a"]) / 2
        )
        assert (ours["collapsed"] == theirs["collapsed"]).all()


def test_a_sweep_run_is_reused_only_when_it_trained_these_settings_on_this_store(quick_report, tmp_path):
    quick = PROFILES["quick"]
    point = gap_diagnosis.diagnosis_point([tuple(p) for p in quick["gap_points"]])
    store = quick_report.root / "data" / "gap_quick" / gap.point_name(*point) / "store"
    folder = gap_diagnosis.cell_folder(
        quick_report.root / "runs" / "gap", point, ("sigmoid", "τ = 1", "raw"), 0
    )
    same = train.make_config(
        "paper_baseline", {"batch_size": quick["batch_size"], "max_epochs": quick["max_epochs"]}
    )
    assert gap_diagnosis._trained(folder, same, store)
    assert not gap_diagnosis._trained(
        folder, dataclasses.replace(same, max_epochs=same.max_epochs + 1), store
    )
    assert not gap_diagnosis._trained(tmp_path, same, store)  # nothing trained there
