"""The synthetic corpus: real containers, determinism, tags that follow the audio, and a coupling knob
that measurably changes how the picture follows the sound.

The measurements here are made on decoded files with estimators written for the test (spectral
flux, chroma, frame differences), not read from the generator's internals.
"""

import json
from dataclasses import replace

import av
import numpy as np
import pandas as pd
import pytest

from mvnb import synth
from mvnb.corpus import synth_video_id
from mvnb.songs import GENRES

SPEC = synth.SynthSpec(
    n_videos=14, seed=3, coupling=1.0, style_coupling=1.0, min_seconds=8.0, max_seconds=10.0, size=(256, 144)
)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The same 14 songs rendered at coupling 1 and at coupling 0."""
    root = tmp_path_factory.mktemp("synth")
    made = {}
    for c in (1.0, 0.0):
        out = root / f"c{c}"
        synth.make_corpus(out, replace(SPEC, coupling=c), workers=2)
        made[c] = out
    return made


def decode(path):
    """(frames (T, H, W, 3) uint8, audio (channels, samples) float32, container facts)."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        facts = dict(
            vcodec=v.codec_context.name,
            acodec=a.codec_context.name,
            width=v.width,
            height=v.height,
            fps=float(v.average_rate),
            rate=a.rate,
            channels=a.layout.nb_channels,
            duration=float(c.duration / av.time_base),
            pix_fmt=v.format.name,
        )
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
    return frames, audio, facts


def stft_power(mono, rate, n_fft=2048, hop=512):
    """(frames, bins) power spectrogram with a Hann window, frame j centred on sample j * hop."""
    mono = np.pad(mono, n_fft // 2)
    n = 1 + (len(mono) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(mono[idx] * np.hanning(n_fft), axis=1)) ** 2
    return spec, np.fft.rfftfreq(n_fft, 1 / rate)


def onset_strength(mono, rate, hop=512):
    """Half-wave rectified log spectral flux, one value per hop."""
    spec, _ = stft_power(mono, rate, hop=hop)
    return np.maximum(0, np.diff(np.log1p(1e3 * spec), axis=0)).sum(axis=1)


def test_containers_are_real_h264_aac_with_the_promised_facts(corpora):
    meta = pd.read_csv(corpora[1.0] / "metadata.csv")
    assert list(meta.columns[:5]) == ["video_id", "path", "genre", "tags", "duration_s"]
    assert meta["genre"].nunique() == len(GENRES) >= 6
    for _, row in meta.iterrows():
        frames, audio, facts = decode(corpora[1.0] / row["path"])
        assert (facts["vcodec"], facts["acodec"], facts["pix_fmt"]) == ("h264", "aac", "yuv420p")
        assert (facts["width"], facts["height"]) == SPEC.size
        assert facts["fps"] == row["source_fps"] and 15 <= facts["fps"] <= 30 and facts["fps"] != 10
        assert facts["rate"] == row["source_sample_rate"] in (44100, 48000)
        assert facts["channels"] == 2
        assert abs(facts["duration"] - row["duration_s"]) < 0.1
        assert SPEC.min_seconds <= row["duration_s"] <= SPEC.max_seconds
        assert abs(len(frames) - row["duration_s"] * row["source_fps"]) <= 1
        assert abs(audio.shape[1] / row["source_sample_rate"] - row["duration_s"]) < 0.1


def test_same_seed_gives_identical_metadata_frames_and_samples(corpora, tmp_path):
    spec = replace(SPEC, n_videos=2)
    synth.make_corpus(tmp_path, spec)
    first = pd.read_csv(corpora[1.0] / "metadata.csv").head(2)
    assert (tmp_path / "metadata.csv").read_text().splitlines()[1:] == first.to_csv(index=False).splitlines()[
        1:
    ]
    for _, row in first.iterrows():
        frames_a, audio_a, _ = decode(tmp_path / row["path"])
        frames_b, audio_b, _ = decode(corpora[1.0] / row["path"])
        np.testing.assert_array_equal(frames_a, frames_b)
        np.testing.assert_array_equal(audio_a, audio_b)


def test_audio_does_not_depend_on_the_coupling_knobs(corpora):
    for video_id in ("mv00000", "mv00005"):
        _, a1, _ = decode(corpora[1.0] / "videos" / f"{video_id}.mp4")
        _, a0, _ = decode(corpora[0.0] / "videos" / f"{video_id}.mp4")
        np.testing.assert_array_equal(a1, a0)
    m1 = pd.read_csv(corpora[1.0] / "metadata.csv").drop(columns="coupling")
    m0 = pd.read_csv(corpora[0.0] / "metadata.csv").drop(columns="coupling")
    pd.testing.assert_frame_equal(m1, m0)


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def test_a_sweep_point_can_borrow_its_songs_audio_unchanged(corpora, tmp_path):
    borrowed = tmp_path / "c0.5"
    synth.make_corpus(
        borrowed, replace(SPEC, coupling=0.5, n_videos=3, size=(128, 72)), audio_from=corpora[1.0]
    )
    for video_id in ("mv00000", "mv00002"):
        mine, lender = borrowed / "videos" / f"{video_id}.mp4", corpora[0.0] / "videos" / f"{video_id}.mp4"
        assert audio_packets(mine) == audio_packets(lender)  # the very AAC bytes a fresh render gives
        frames, audio, facts = decode(mine)
        assert facts["acodec"] == "aac" and (facts["width"], facts["height"]) == (128, 72)
        np.testing.assert_array_equal(audio, decode(lender)[1])
        assert abs(facts["duration"] - decode(lender)[2]["duration"]) < 0.1
    with pytest.raises(ValueError, match="seed differ"):
        synth.make_corpus(tmp_path / "other", replace(SPEC, seed=4, n_videos=2), audio_from=corpora[1.0])
    with pytest.raises(ValueError, match="fewer videos"):
        synth.make_corpus(tmp_path / "more", replace(SPEC, n_videos=20), audio_from=corpora[1.0])


def test_one_frame_rate_for_all_changes_nothing_else(corpora, tmp_path):
    fixed = replace(SPEC, coupling=0.5, n_videos=2, size=(128, 72), fps=10)
    synth.make_corpus(tmp_path / "c0.5", fixed, audio_from=corpora[1.0])
    for index in range(2):
        mine, drawn = (
            synth.video_plan(fixed, index)["row"],
            synth.video_plan(replace(fixed, fps=None), index)["row"],
        )
        assert mine["source_fps"] == 10 != drawn["source_fps"]
        assert {**mine, "source_fps": drawn["source_fps"]} == drawn
        frames, _, facts = decode(tmp_path / "c0.5" / mine["path"])
        assert facts["fps"] == 10 and abs(len(frames) - 10 * mine["duration_s"]) <= 1


def test_a_corpus_made_before_a_setting_existed_is_still_its_own(corpora, tmp_path):
    """synth.json from before `fps` was a setting: its default is what made the corpus."""
    old = tmp_path / "old"
    synth.make_corpus(old, replace(SPEC, n_videos=1))
    recorded = json.loads((old / "synth.json").read_text())
    (old / "synth.json").write_text(json.dumps({k: v for k, v in recorded.items() if k != "fps"}))
    synth.make_corpus(old, replace(SPEC, n_videos=1))
    with pytest.raises(ValueError, match="other settings"):
        synth.make_corpus(old, replace(SPEC, n_videos=1, fps=10))


def test_a_folder_made_with_other_settings_is_refused(corpora):
    with pytest.raises(ValueError, match="other settings"):
        synth.make_corpus(corpora[1.0], replace(SPEC, coupling=0.5))


def estimated_tempo(mono, rate, lo=55, hi=200):
    """Tempo in bpm from the autocorrelation peak of the onset strength."""
    hop = 512
    env = onset_strength(mono, rate, hop)
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[len(env) - 1 :]
    lags = np.arange(len(ac)) * hop / rate
    bpm = 60 / np.maximum(lags, 1e-9)
    ok = (bpm >= lo) & (bpm <= hi)
    return bpm[ok][np.argmax(ac[ok])]


def mode_score(mono, rate, key):
    """Chroma correlation with the major minus the minor triad template, rooted at `key` (semitones above
    A)."""
    spec, freqs = stft_power(mono, rate, n_fft=8192, hop=4096)
    band = (freqs > 80) & (freqs < 2000)
    pitch_class = np.round(12 * np.log2(freqs[band] / 110.0)).astype(int) % 12
    chroma = np.bincount(pitch_class, weights=spec[:, band].sum(axis=0), minlength=12)
    chroma = np.roll(chroma / chroma.sum(), -key)
    major, minor = np.zeros(12), np.zeros(12)
    major[[0, 4, 7]] = minor[[0, 3, 7]] = 1
    return chroma @ major - chroma @ minor


def high_band_flux(mono, rate):
    """Mean positive spectral flux above 6 kHz: hats and snares, which only drum tracks have."""
    spec, freqs = stft_power(mono, rate, hop=512)
    return float(np.maximum(0, np.diff(np.log1p(1e4 * spec[:, freqs > 6000]), axis=0)).mean())


def test_tags_follow_the_audio_actually_generated(corpora):
    meta = pd.read_csv(corpora[1.0] / "metadata.csv")
    tags = meta["tags"].fillna("").str.split(";")
    measured = []
    for (_, row), tag in zip(meta.iterrows(), tags, strict=True):
        _, audio, _ = decode(corpora[1.0] / row["path"])
        mono = audio.mean(axis=0)
        rate = row["source_sample_rate"]
        measured.append(
            dict(
                drums="drums" in tag,
                minor="minor" in tag,
                fast="fast" in tag,
                slow="slow" in tag,
                flux=high_band_flux(mono, rate),
                mode=mode_score(mono, rate, row["key"]),
                tempo=estimated_tempo(mono, rate) if "drums" in tag else np.nan,
                bpm=row["tempo_bpm"],
            )
        )
    m = pd.DataFrame(measured)
    # drums: every drum track has more high-band flux than every drumless one
    assert m.loc[m.drums, "flux"].min() > m.loc[~m.drums, "flux"].max()
    # mode: the rendered harmony leans to the tagged mode (a clear majority; melody notes blur it)
    agree = (m["mode"] < 0) == m["minor"]
    assert agree.mean() >= 0.8, m[["minor", "mode"]]
    # tempo: the estimate from the audio matches the tag, up to the usual octave errors
    drum = m[m.drums]
    ratio = drum["tempo"] / drum["bpm"]
    near = np.min(np.abs(np.log2(ratio.to_numpy()[:, None]) - np.log2([0.5, 1, 2])[None]), axis=1) < 0.05
    assert near.mean() >= 0.8, drum[["tempo", "bpm"]]
    assert (m.loc[m.fast, "bpm"] >= 130).all() and (m.loc[m.slow, "bpm"] < 90).all()


def frame_audio_correlation(path):
    """Pearson correlation between audio onset strength and frame-difference energy, at the frame rate."""
    frames, audio, facts = decode(path)
    mono = audio.mean(axis=0)
    rate, fps = facts["rate"], facts["fps"]
    hop = int(round(rate / fps))
    onset = onset_strength(mono, rate, hop)
    motion = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    n = min(len(onset), len(motion))
    # both are changes from time j / fps to (j + 1) / fps: onset[j] compares the spectra centred
    # on those instants, motion[j] the frames shown at them
    return np.corrcoef(onset[:n], motion[:n])[0, 1]


def test_coupling_changes_how_picture_follows_sound(corpora):
    meta = pd.read_csv(corpora[1.0] / "metadata.csv")
    drummed = meta[meta["tags"].fillna("").str.contains("drums")]
    corr = {
        c: np.mean([frame_audio_correlation(corpora[c] / p) for p in drummed["path"]]) for c in (1.0, 0.0)
    }
    assert corr[1.0] > 0.3, corr
    assert corr[0.0] < 0.1, corr


def test_the_factor_table_is_the_score_heard(corpora):
    """factors.csv beside the corpus: the tempo the metadata states, energy that rises where a louder
    section starts, onsets counted from the score, and phantom rows only where the coupling is below 1."""
    factors = pd.read_csv(corpora[0.0] / synth.FACTORS_FILE)
    meta = pd.read_csv(corpora[0.0] / "metadata.csv").set_index("video_id")
    heard = factors[factors["source"] == "heard"]
    assert set(factors["source"]) == {"heard", "phantom"}
    assert not (pd.read_csv(corpora[1.0] / synth.FACTORS_FILE)["source"] == "phantom").any()
    for video_id, rows in heard.groupby("video_id"):
        assert rows["tempo_bpm"].round(2).eq(meta.loc[video_id, "tempo_bpm"]).all()
        assert (rows["minor"] == (meta.loc[video_id, "mode"] == "minor")).all()
        assert len(rows) == int(np.ceil(meta.loc[video_id, "duration_s"]))
    checked = 0
    for index in range(SPEC.n_videos):
        score = synth.video_plan(replace(SPEC, coupling=0.0), index)["score"]
        rows = heard[heard["video_id"] == synth_video_id(index)].set_index("t_s")
        for k in range(1, len(score.section_energy)):
            before, after, start = score.section_energy[k - 1], score.section_energy[k], k * 16 * score.beat_s
            if start + 1 < score.duration_s and abs(after - before) > 0.1:
                step_before, step_after = np.floor(start) - 1, np.ceil(start)
                assert np.sign(rows.loc[step_after, "energy"] - rows.loc[step_before, "energy"]) == np.sign(
                    after - before
                )
                checked += 1
        onsets = np.histogram([e[0] for e in score.events], bins=np.arange(0, len(rows) + 1))[0]
        np.testing.assert_array_equal(rows["onset_density"].to_numpy(), onsets)
    assert checked >= 3  # the 8-10 s songs of fast genres cross a section boundary
