"""mvnb.gap_diagnosis: the 2x2x2 of the paper's choices."""

from mvnb import gap_diagnosis


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
