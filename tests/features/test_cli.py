"""`mvnb.features.cli`: `python -m mvnb features` extracts, then refuses a changed setting."""

from features.tiny_store import write_store
from mvnb.features import cli


def test_cli_extracts_then_refuses_a_changed_setting(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    write_store(tmp_path, {"vid_a": 1})
    base = ["--data", str(tmp_path), "--views", "1", "--video-weights", "random", "--workers", "0"]
    assert cli.run(parser.parse_args(base + ["--frames", "2"])) == 0
    assert "1 computed" in capsys.readouterr().out
    assert cli.run(parser.parse_args(base + ["--frames", "3"])) == 2
    assert "refusing to mix" in capsys.readouterr().out
