"""mvnb.encoders.musicnn_weights: the published tags and the provenance of the packaged checkpoints."""

import hashlib
import importlib.metadata
from pathlib import Path

from mvnb.encoders.musicnn_weights import MSD_LABELS, MTT_LABELS, musicnn_provenance


def test_labels_are_the_published_ones():
    assert len(MSD_LABELS) == len(MTT_LABELS) == 50
    assert MSD_LABELS[:3] == ["rock", "pop", "alternative"] and MSD_LABELS[-1] == "happy"
    assert MTT_LABELS[:3] == ["guitar", "classical", "slow"] and MTT_LABELS[-1] == "choral"


def test_provenance_names_the_packaged_checkpoint():
    record = musicnn_provenance("MTT_musicnn")
    assert record["name"] == "MTT_musicnn" and record["package"] == "musicnn" and record["version"] == "0.1.0"
    assert record["source"] == ["musicnn/MTT_musicnn/.index", "musicnn/MTT_musicnn/.data-00000-of-00001"]
    data = importlib.metadata.distribution("musicnn").locate_file(record["source"][1])
    assert record["sha256"] == hashlib.sha256(Path(data).read_bytes()).hexdigest()
