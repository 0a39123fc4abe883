"""Fixtures of the feature-store tests: encoders loaded once per module, and one extracted store."""

import functools
from pathlib import Path

import pytest

from features.tiny_store import FAST, write_store
from mvnb import features as fs
from mvnb.encoders import musicnn, r2plus1d


@pytest.fixture(scope="module", autouse=True)
def load_encoders_once():
    """Each extraction loads its encoders; here the loaded (frozen) models are reused to save time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(r2plus1d, "load_r2plus1d", functools.lru_cache(r2plus1d.load_r2plus1d))
        patch.setattr(musicnn, "load_musicnn", functools.lru_cache(musicnn.load_musicnn))
        yield


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """Three videos, five segments, extracted once with FAST settings."""
    root = tmp_path_factory.mktemp("store")
    write_store(root, {"vid_a": 2, "vid_b": 2, "vid_c": 1})
    fs.extract_features(root, **FAST)
    return root
