"""Cold-start queries: the `similar` CLI's one-line refusals, a video that gives no segment, and
end to end on the shared quick-profile report."""

import argparse
import json

import numpy as np
import pytest

from mvnb import coldstart as cs
from mvnb.metrics import unit_rows


def parse_similar(argv):
    parser = argparse.ArgumentParser()
    cs.add_arguments(parser)
    return parser.parse_args(argv)


def test_similar_cli_says_what_is_wrong_in_one_line(tmp_path, capsys):
    video = tmp_path / "new.mp4"
    video.write_bytes(b"")
    assert cs.run(parse_similar(["--run", str(tmp_path / "no_run"), "--video", str(video)])) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("similar: ") and "--data" in out and len(out.splitlines()) == 1


def test_similar_finds_a_catalogue_video_queried_as_new(quick_report, capsys):
    """End to end on the quick report: a catalogue video, cut and encoded again from its file,
    has the features the store holds, and `similar` ranks it first with cosine about 1."""
    from mvnb import features
    from mvnb.runs import run_dir

    runs, store = quick_report.root / "runs", quick_report.root / "data" / "synth_quick" / "store"
    run = run_dir(runs, "corrected", 0, rotation=0)
    if not (run / "heads.pt").exists():
        pytest.skip("the quick report has no corrected run (its notebook smoke tests say why)")
    manifest, audio, video, _, _ = features.load_feature_pair(store)
    video_id = manifest["video_id"].iloc[0]
    source = quick_report.root / "data" / "synth_quick" / "videos" / f"{video_id}.mp4"

    segments, new_audio, new_video = cs.encode_video(source, store, quick_report.root / "query_again")
    rows = manifest.index[manifest["video_id"] == video_id]
    assert segments["start_s"].tolist() == manifest.loc[rows, "start_s"].tolist()
    for new, old in ((new_audio[:, 0], audio[rows, 0]), (new_video[:, 0], video[rows, 0])):
        cos = (unit_rows(new) * unit_rows(np.asarray(old, dtype=np.float32))).sum(1)
        assert cos.min() > 0.999, cos

    assert cs.run(parse_similar(["--run", str(run), "--video", str(source), "--k", "3"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"similar: {video_id} (")
    first = lines[2].split()
    assert first[:2] == ["1", video_id] and float(first[2]) > 0.999


def test_a_video_that_gives_no_segment_is_refused_with_its_reason(tmp_path):
    from mvnb import features, segments

    store = tmp_path / "store"
    store.mkdir()
    (store / "preprocess.json").write_text(json.dumps(segments.PreprocessParams().as_json()))
    for modality in features.KEYS:
        folder = features.feature_dir(store, modality)
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(
            json.dumps(
                {  # what the encoding reads before it cuts the video
                    "settings": {
                        "views": {"frames": 8, "seed": 0},
                        "precision": "fp32",
                        "model": "MSD_musicnn",
                    },
                    "provenance": {"weights": "random"},
                }
            )
        )
    empty = tmp_path / "new.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"^new\.mp4: empty file"):
        cs.encode_video(empty, store, tmp_path / "work")
