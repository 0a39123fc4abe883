"""`python -m mvnb <command>`: the pipeline from the shell.

Each command lives in the module of its concept, which exposes `add_arguments(parser)` and
`run(args) -> int`; this file only maps command names to modules, importing them lazily so
that `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "synth": ("mvnb.synth", "write the synthetic music-video corpus (mp4 + metadata.csv)"),
    "preprocess": (
        "mvnb.segments",
        "cut each video into segments: 10 fps mp4 + 16 kHz mono wav, manifest, split",
    ),
    "features": (
        "mvnb.features.cli",
        "encode every segment with frozen musicnn and R(2+1)D-18 into the feature store",
    ),
    "train": ("mvnb.train", "train the projection heads contrastively on cached features"),
    "similar": ("mvnb.coldstart", "the catalogue videos nearest to a new video (cold start)"),
    "embed": (
        "mvnb.embed",
        "embeddings of your own videos as parquet: frozen features, and CL_a, CL_v, CL_agg with --run",
    ),
    "report": ("mvnb.report", "run the notebooks in order with papermill"),
}


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen command; returns its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m mvnb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).add_arguments(cmd)
    args = parser.parse_args(argv)
    return importlib.import_module(COMMANDS[args.command][0]).run(args)


if __name__ == "__main__":
    sys.exit(main())
