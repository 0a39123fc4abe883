"""Build tests/fixtures/musicnn_golden.npz: outputs of the original TensorFlow musicnn on fixed patches.

One-off script, run OUTSIDE the project's venv (TensorFlow is not an mvnb dependency). From
the repository root:

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow==2.21.0 tf-keras==2.21.0 librosa
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tools/make_musicnn_golden.py

It synthesises four deterministic 3 s test sounds at 16 kHz, turns each into one (187, 96)
log-mel patch as musicnn's extractor does with current librosa (zero-padded centred STFT,
n_fft 512, hop 256, Slaney mel, power 2, rounded through float16, the first 187 frames), but
with the log compression log10(10000·x + 1) done in float32: the original multiplies the
float16 array, which overflows under NumPy 2. It then runs the original graph code
(`musicnn.models.define_model` in a `tf.compat.v1` session restoring the packaged
checkpoint) for MSD_musicnn and MTT_musicnn and saves, compressed:

- `patches` `(4, 187, 96)` float32, `sounds` the names of the four sounds;
- per model M in {MSD_musicnn, MTT_musicnn}: `M/taggram` `(4, 50)`, `M/max_pool` and
  `M/mean_pool` `(4, 753)`, `M/penultimate` `(4, 200)`, all float32;
- `versions`: the TensorFlow, librosa and numpy versions used.
"""

from __future__ import annotations

import os
from pathlib import Path

import librosa
import numpy as np
import tensorflow as tf
from musicnn import models

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 3 * SAMPLE_RATE
PATCH_FRAMES = 187
N_CLASSES = 50
OUTPUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "musicnn_golden.npz"


def test_sounds(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Four contrasting 3 s mono sounds, `(48000,)` float32 in [-1, 1]."""
    t = np.arange(WINDOW_SAMPLES) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    beat_phase = (t * 2.0) % 1.0
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-beat_phase * 25)
    hats = rng.standard_normal(t.size) * np.exp(-((t * 4.0) % 1.0) * 60) * 0.3
    riff = np.tanh(6 * sum(np.sign(np.sin(2 * np.pi * f * t)) for f in (82.4, 123.5)) / 2)
    noise = rng.standard_normal(t.size) * np.linspace(0.05, 0.5, t.size)
    sounds = {"chord": 0.5 * chord, "beat": 0.7 * kick + hats, "riff": 0.6 * riff, "noise": noise}
    return {name: np.clip(x, -1, 1).astype(np.float32) for name, x in sounds.items()}


def musicnn_patch(audio: np.ndarray) -> np.ndarray:
    """The (187, 96) float32 log-mel patch musicnn's extractor takes from a 3 s window."""
    mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, hop_length=256, n_fft=512, n_mels=96).T
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * mel + np.float32(1))[:PATCH_FRAMES]


def run_original(model: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the original TF musicnn `model` on `patches` `(batch, 187, 96)`."""
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
            x, is_training, model, N_CLASSES
        )
        taggram = tf.nn.sigmoid(y)
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(session, os.path.dirname(models.__file__) + "/" + model + "/")
        outputs = session.run(
            [taggram, max_pool, mean_pool, penultimate], feed_dict={x: patches, is_training: False}
        )
    keys = ("taggram", "max_pool", "mean_pool", "penultimate")
    return {f"{model}/{key}": value.astype(np.float32) for key, value in zip(keys, outputs, strict=True)}


def main() -> None:
    tf.compat.v1.disable_eager_execution()
    sounds = test_sounds(np.random.default_rng(20240611))
    patches = np.stack([musicnn_patch(audio) for audio in sounds.values()])
    arrays = {
        "patches": patches,
        "sounds": np.array(list(sounds)),
        "versions": np.array(
            [f"tensorflow {tf.__version__}", f"librosa {librosa.__version__}", f"numpy {np.__version__}"]
        ),
    }
    for model in ("MSD_musicnn", "MTT_musicnn"):
        arrays.update(run_original(model, patches))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUTPUT.with_name(f".{OUTPUT.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(OUTPUT)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    for model in ("MSD_musicnn", "MTT_musicnn"):
        print(model, np.round(arrays[f"{model}/taggram"].max(axis=1), 3))


if __name__ == "__main__":
    main()
