"""The package's layers: core modules never import experiment modules (not even lazily, inside a
function), and every module is classified as one or the other, so a new module must be placed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mvnb"

# Top-level names under mvnb/ (a module, or a package with everything in it).
CORE = {
    "__init__",
    "io",
    "device",
    "corpus",
    "config",
    "media",
    "songs",
    "synth",
    "segments",
    "encoders",
    "features",
    "heads",
    "loss",
    "samplers",
    "metrics",
    "standardise",
    "workers",
}
EXPERIMENTS = {
    "runs",
    "embeddings",
    "train",
    "fit",
    "projection",
    "results",
    "probes",
    "table2",
    "paper",
    "neighbours",
    "agreement",
    "coldstart",
    "intake",
    "embed",
    "maps",
    "explore",
    "grids",
    "gap",
    "gap_diagnosis",
    "gap_findings",
    "readouts",
    "provenance",
    "report",
    "__main__",
}


def module_name(path: Path) -> str:
    """`mvnb.x.y` of a file under the package (`mvnb.x` for `x/__init__.py`)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """`(line, module)` for every import of an mvnb module in a file, anywhere in it (functions too):
    `import mvnb.x`, `from mvnb.x import y`, `from . import y`, `from ..x import y`; a name imported
    from a package counts as its submodule (`from mvnb import train` imports `mvnb.train`)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mvnb"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "mvnb":
                continue
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


def layer(module: str) -> str | None:
    """ "core" or "experiment" for an mvnb module (by its top-level name), None for a name that is no
    module (e.g. a function imported from one)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if not (PACKAGE / f"{top}.py").is_file() and not (PACKAGE / top).is_dir() and top != "__init__":
        return None
    return "core" if top in CORE else "experiment" if top in EXPERIMENTS else "unclassified"


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_classified_as_core_or_experiment():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in FILES}
    assert not CORE & EXPERIMENTS, CORE & EXPERIMENTS
    unclassified = sorted(tops - CORE - EXPERIMENTS)
    assert not unclassified, f"classify these modules in tests/test_layering.py: {unclassified}"


@pytest.mark.parametrize("path", [p for p in FILES if layer(module_name(p)) == "core"], ids=module_name)
def test_core_never_imports_an_experiment_module(path):
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for line, module in imported_modules(path)
        if layer(module) == "experiment"
    ]
    assert not bad, "core imports experiment:\n" + "\n".join(bad)


def test_the_import_walker_sees_relative_lazy_and_package_imports(tmp_path, monkeypatch):
    """The walker itself: a lazy relative import of an experiment inside a function is found."""
    fake = tmp_path / "mvnb"
    (fake / "encoders").mkdir(parents=True)
    (fake / "train.py").write_text("")
    (fake / "encoders" / "x.py").write_text(
        "from ..train import fit\n"
        "def f():\n    from mvnb import train\n    import mvnb.train\n    from . import y\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = imported_modules(fake / "encoders" / "x.py")
    assert (1, "mvnb.train") in found and (3, "mvnb.train") in found and (4, "mvnb.train") in found
    assert (5, "mvnb.encoders.y") in found
    assert layer("mvnb.train") == "experiment" and layer("mvnb.train.fit") == "experiment"
