"""The README's Results quote the committed figures: every interval it prints is in a table there."""

import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
INTERVAL = re.compile(r"(\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\]")


def results_section() -> str:
    """The text of the README's `## Results` section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## Results\n", 1)[1].split("\n## ", 1)[0]


def csv_intervals(path: Path) -> set[tuple[float, float, float]]:
    """`(estimate, low, high)` of every row of a CSV with columns `X`, `X_low`, `X_high`."""
    table = pd.read_csv(path)
    found = set()
    for low in [c for c in table.columns if c.endswith("_low")]:
        name = low.removesuffix("_low")
        if name in table and f"{name}_high" in table:
            found |= set(map(tuple, table[[name, low, f"{name}_high"]].dropna().to_numpy()))
    return found


def quoted_in_figures(estimate: str, low: str, high: str) -> bool:
    """Whether `estimate [low, high]` is printed in a markdown table of figures/, or is a CSV row's
    interval rounded to the quoted digits."""
    figures = ROOT / "figures"
    literal = f"{estimate} [{low}, {high}]"
    if any(literal in p.read_text(encoding="utf-8") for p in figures.glob("*.md")):
        return True
    digits = len(estimate.split(".")[1])
    wanted = tuple(float(v) for v in (estimate, low, high))
    return any(
        all(round(v, digits) == w for v, w in zip(row, wanted, strict=True))
        for path in figures.glob("*.csv")
        for row in csv_intervals(path)
    )


def test_every_interval_the_readme_quotes_is_in_the_committed_figures():
    section = results_section()
    quoted = INTERVAL.findall(section)
    assert len(quoted) >= 5, "the Results section quotes its numbers as 'estimate [low, high]'"
    missing = [q for q in quoted if not quoted_in_figures(*q)]
    assert not missing, f"quoted in README.md but in no table of figures/: {missing}"


def test_the_results_name_the_weights_and_the_collapse_the_tables_report():
    section = " ".join(results_section().split())
    assert "R(2+1)D-18: random init (seed 0), not Kinetics-400 · musicnn: MSD_musicnn" in section
    table1 = (ROOT / "figures" / "table1.md").read_text(encoding="utf-8")
    assert "Weights: R(2+1)D-18: random init (seed 0), not Kinetics-400 · musicnn: MSD_musicnn" in table1
    assert "5 of 5 runs collapsed" in section and "| paper_baseline " in table1
    baseline = next(line for line in table1.splitlines() if line.startswith("| paper_baseline "))
    assert "5 of 5 runs collapsed" in baseline
