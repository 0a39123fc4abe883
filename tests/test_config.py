"""mvnb.config: the profiles agree on their keys, paths resolve from the repository root, and a
full-size profile refuses a corpus too small for its sizes."""

import pandas as pd
import pytest
from test_report import own_corpus

from mvnb import config
from mvnb.config import PROFILES, check_full_size, profile_params
from mvnb.corpus import split_of, synth_video_id


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_has_the_default_profiles_keys_and_names_itself(name):
    assert set(PROFILES[name]) - {"full_size"} == set(PROFILES["default"])
    assert PROFILES[name]["profile"] == name and PROFILES[name]["runs_dir"] == f"runs/{name}"
    assert set(PROFILES[name]["cl_configs"]) | set(PROFILES[name]["map_configs"]) <= set(
        PROFILES[name]["configs"]
    )


def test_only_the_paper_profile_is_full_size():
    assert [name for name, p in PROFILES.items() if p.get("full_size")] == ["paper"]


def test_overrides_replace_values_and_unknown_keys_or_profiles_are_refused():
    params = profile_params("quick", {"batch_size": 3})
    assert (
        params["batch_size"] == 3 and PROFILES["quick"]["batch_size"] == 8
    )  # the profile itself is untouched
    with pytest.raises(KeyError, match="unknown parameter"):
        profile_params("quick", {"batch_sise": 3})
    with pytest.raises(KeyError, match="unknown profile 'fast'"):
        profile_params("fast")


def test_corpus_and_segment_store_paths(tmp_path):
    params = profile_params("default")
    assert config.corpus_dir(params) == config.REPO_ROOT / "data" / "synth_default"
    assert config.segment_store(params) == config.corpus_dir(params) / "store"
    mine = profile_params("quick", {"data_root": str(tmp_path), "corpus": "mine"})
    assert (
        config.corpus_dir(mine) == tmp_path / "mine"
        and config.segment_store(mine) == tmp_path / "mine" / "store"
    )
    assert (
        config.repo_path("figures") == config.REPO_ROOT / "figures" and config.repo_path(tmp_path) == tmp_path
    )


def test_a_corpus_is_synthetic_until_it_holds_videos_or_metadata_of_its_own(tmp_path):
    params = {"data_root": str(tmp_path), "corpus": "c"}
    assert config.is_synthetic(params)  # nothing there yet: notebook 00 will render it
    (tmp_path / "c" / "videos").mkdir(parents=True)
    assert not config.is_synthetic(params)
    (tmp_path / "c" / "synth.json").write_text("{}")
    assert config.is_synthetic(params)


def test_full_size_counts_a_synthetic_corpus_still_to_be_made_by_its_generators_ids(tmp_path):
    small = {"data_root": str(tmp_path), "n_videos": 1100, "gap_videos": 2000}
    n_train = sum(split_of(synth_video_id(i)) == "train" for i in range(1100))
    if n_train < 1000:
        with pytest.raises(SystemExit, match=f"has 1100 videos, {n_train} of them in the training split"):
            check_full_size(profile_params("paper", small))
    else:
        check_full_size(profile_params("paper", small))
    with pytest.raises(SystemExit, match=r"sweep corpus \(gap_videos = 100\)"):
        check_full_size(profile_params("paper", {"data_root": str(tmp_path), "gap_videos": 100}))


def test_full_size_reads_durations_from_the_stores_probed_videos(tmp_path):
    own_corpus(tmp_path, 1400)
    store = tmp_path / "mine" / "store"
    store.mkdir()
    # videos.csv as the segment store writes it (`segments.build_tables`)
    pd.DataFrame({"video_id": ["clip0", "clip1"], "media_duration_s": [10.0, 100.0]}).to_csv(
        store / "videos.csv", index=False
    )
    mine = profile_params("paper", {"data_root": str(tmp_path), "corpus": "mine"})
    with pytest.raises(
        SystemExit, match=r"1 video\(s\) are shorter than the 30 s that 6 segments of 5 s need"
    ):
        check_full_size(mine)


def test_full_size_check_counts_the_training_split_and_accepts_explicit_sizes(tmp_path):
    own_corpus(tmp_path, 300)
    n_train = sum(split_of(f"clip{i}") == "train" for i in range(300))
    mine = dict(data_root=str(tmp_path), corpus="mine")
    with pytest.raises(SystemExit, match=f"{n_train} of them in the training split"):
        check_full_size(profile_params("paper", mine))
    check_full_size(
        profile_params("paper", mine | {"batch_size": n_train, "gap_videos": 500})
    )  # 60 % of them train
    check_full_size(
        profile_params("paper", {"data_root": str(tmp_path)})
    )  # to be synthesised: 2000 videos of >= 30 s
    with pytest.raises(SystemExit, match="shorter than"):
        check_full_size(profile_params("paper", {"data_root": str(tmp_path), "min_seconds": 20.0}))
    check_full_size(profile_params("default", mine))  # only full_size profiles refuse


def test_overrides_are_literals_or_strings():
    assert config.parse_overrides(["seeds=[0, 1]", "corpus=mine", "coupling=0.25"]) == {
        "seeds": [0, 1],
        "corpus": "mine",
        "coupling": 0.25,
    }
    with pytest.raises(KeyError, match="unknown parameter"):
        profile_params("quick", {"no_such_knob": 1})
    with pytest.raises(ValueError, match="name=value"):
        config.parse_overrides(["seeds"])
