"""Notebooks are committed clean, declare literal-only parameters, and run in order at the quick profile."""
import ast
import json

import pytest

from mvnb.report import report_notebooks

NOTEBOOKS = report_notebooks()


def parameters_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
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
    assert {name for name, *_ in bars} >= {"01_preprocess.ipynb", "02_features.ipynb", "03_contrastive_training.ipynb"}
