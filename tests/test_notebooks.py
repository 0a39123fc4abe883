"""Notebooks are committed clean, declare literal-only parameters that agree with the default profile, and
run in
order at the quick profile."""

import ast
import json

import pytest

from mvnb.config import PROFILES
from mvnb.report import report_notebooks

NOTEBOOKS = report_notebooks()


def parameters_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_literal_only_parameters_cell(path):
    cells = parameters_cells(json.loads(path.read_text()))
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters'"
    for stmt in ast.parse("".join(cells[0]["source"])).body:
        assert isinstance(stmt, ast.Assign), f"{path.name}: only assignments belong in the parameters cell"
        ast.literal_eval(stmt.value)  # raises on anything but a literal


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_in_order_at_quick_profile(path, quick_report):
    rows = quick_report.timings.set_index("notebook")
    assert path.name in rows.index, f"{path.name} did not run; report log:\n{quick_report.log[-3000:]}"
    assert rows.loc[path.name, "status"] == "ok", quick_report.log[-3000:]
    assert (quick_report.root / "runs" / path.name).exists()


def declared_parameters(path) -> dict:
    """The literal values of a notebook's parameters cell, by name."""
    cells = parameters_cells(json.loads(path.read_text()))
    return {
        stmt.targets[0].id: ast.literal_eval(stmt.value)
        for stmt in ast.parse("".join(cells[0]["source"])).body
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_the_default_profile_values(path):
    """Run All in JupyterLab is the same experiment as `make report`: every key a notebook shares with the
    default profile has the profile's value."""
    default = PROFILES["default"]
    declared = declared_parameters(path)
    differ = {k: (v, default[k]) for k, v in declared.items() if k in default and v != default[k]}
    assert not differ, f"{path.name}: (notebook, default profile) values differ: {differ}"


def test_what_runs_is_a_profile_entry_naming_known_configurations():
    """03's configs, 04's cl_configs and top_tags and 05b's map_configs reach the notebooks through `-p`."""
    from mvnb.train import CONFIGS

    declared = {p.name: declared_parameters(p) for p in NOTEBOOKS}
    for notebook, key in (
        ("03_contrastive_training.ipynb", "configs"),
        ("04_probes.ipynb", "cl_configs"),
        ("04_probes.ipynb", "top_tags"),
        ("05b_embedding_map.ipynb", "map_configs"),
    ):
        assert key in declared[notebook]
        for profile in PROFILES.values():
            assert key in profile, f"{key} is not an entry of profile {profile['profile']}"
    for profile in PROFILES.values():
        assert set(profile["configs"]) <= set(CONFIGS), profile["configs"]
        assert set(profile["cl_configs"]) | set(profile["map_configs"]) <= set(profile["configs"])


def test_no_progress_bar_of_an_executed_copy_ends_at_zero_of_a_loop_that_ran(quick_report):
    """Read as files, without a kernel, the executed copies show every loop's final count and time."""
    import re

    bars = []
    for path in sorted((quick_report.root / "runs").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            for output in cell.get("outputs", []):
                text = "".join(output.get("data", {}).get("text/plain", "") or output.get("text", ""))
                found = re.findall(r"(\d+)/(\d+) \[(\d\d:\d\d)", text.split("\r")[-1])
                bars += [(path.name, int(n), int(total), elapsed) for n, total, elapsed in found]
    assert len(bars) >= 10, bars  # preprocess, features, contrastive runs, probes, previews, UMAP, ...
    stuck = [bar for bar in bars if bar[1] == 0 < bar[2]]
    assert not stuck, f"progress bars frozen at 0: {stuck}"
    assert {name for name, *_ in bars} >= {
        "01_preprocess.ipynb",
        "02_features.ipynb",
        "03_contrastive_training.ipynb",
    }
