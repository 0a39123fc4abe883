"""The embedded default corpus: synthetic music videos with ground-truth genres and tags.

Each video is a real mp4 (H.264 + AAC, 44.1 or 48 kHz stereo, 15-30 fps) whose music is
composed and rendered here, and whose picture is drawn in the visual style of a genre.

Music. A song is a *score*: tempo, key, mode, instruments, sections of varying energy and a
list of note and drum events. Genres differ the way genres do (tempo range, drum pattern,
bass, major/minor, clean vs distorted, acoustic-like vs synthetic, density), and tags are
read off the score actually rendered (`song_tags`), so a probe can learn them.

Picture. Every frame is drawn from a *driver*: a loudness envelope, an onset envelope,
bar starts, a tempo and a key. Two knobs decide whose driver it is:

- `coupling` c in [0, 1]. The video is driven by a mix of this song's driver and the driver of
  an independent *phantom* song, composed like the music of the genre whose style the video
  wears. Envelopes mix linearly, c * own + (1 - c) * phantom (brightness follows loudness;
  flashes and shape scale follow onsets); motion speed follows the log-mixed tempo; hue
  follows the circularly mixed key, saturation the mixed mode; and each bar start of the own
  song cuts to a new scene with probability c * cut_rate, each of the phantom's with
  probability (1 - c) * cut_rate. At c = 1 the video follows its audio exactly, at c = 0 it
  follows a song nobody hears.
- `style_coupling` p in [0, 1]: with probability p the visual style is the video's own genre;
  otherwise it is drawn uniformly from all genres (possibly its own). At p = 0 the style is
  independent of the genre.

With both knobs at 0, audio and video are statistically independent. A song depends only on
(seed, index): the knobs never touch the audio, so coupling sweeps hold the music fixed.
Random streams are `numpy.random.default_rng([seed, index, stream])`, one per concern.
"""
from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .media import atomic_write, write_mp4
from .workers import exit_with_parent

MUSIC, PHANTOM, VISUAL, STYLE, FORMAT = range(5)  # random streams per video
TAGS = ("fast", "slow", "distorted", "acoustic", "electronic", "minor", "major", "drums", "ambient", "vocal")


@dataclass(frozen=True)
class Genre:
    """How a genre's music is composed and how its videos look."""

    tempo: tuple[float, float]  # bpm range
    minor_p: float  # probability of a minor key
    instruments: dict[str, float]  # lead instrument -> probability
    drums: str | None  # drum pattern, or None for no drums
    drums_p: float  # probability that a song has drums at all
    distortion: tuple[float, float]  # gain range for guitar-like leads
    vocal_p: float
    density: int  # lead notes per beat
    # the visual style
    hue: float  # base hue in [0, 1)
    saturation: float
    shape: str  # circles | bars | stripes | rects | rings
    motion: str  # drift | orbit | bounce
    cut_rate: float  # probability of a cut at a bar start of the driver
    black_and_white: bool = False


GENRES: dict[str, Genre] = {
    "pop": Genre((100, 124), 0.2, {"synth": 0.5, "pluck": 0.5}, "backbeat", 1.0, (0, 0), 0.9, 2,
                 0.92, 0.8, "circles", "bounce", 0.5),
    "rock": Genre((108, 140), 0.4, {"guitar": 1.0}, "backbeat", 1.0, (4, 8), 0.6, 2,
                  0.05, 0.7, "rects", "drift", 0.35),
    "metal": Genre((150, 190), 0.9, {"guitar": 1.0}, "double", 1.0, (15, 30), 0.3, 4,
                   0.0, 0.0, "stripes", "drift", 0.6, black_and_white=True),
    "electronic": Genre((120, 132), 0.6, {"synth": 1.0}, "four", 1.0, (0, 0), 0.2, 4,
                        0.55, 1.0, "bars", "orbit", 0.7),
    "hiphop": Genre((80, 98), 0.6, {"synth": 0.5, "pluck": 0.5}, "boombap", 1.0, (0, 0), 0.8, 1,
                    0.12, 0.9, "rects", "bounce", 0.3),
    "ambient": Genre((60, 82), 0.4, {"pad": 1.0}, None, 0.0, (0, 0), 0.15, 1,
                     0.45, 0.5, "rings", "orbit", 0.08),
    "folk": Genre((84, 118), 0.25, {"pluck": 1.0}, "light", 0.35, (0, 0), 0.7, 2,
                  0.1, 0.0, "circles", "drift", 0.15, black_and_white=True),
}
GENRE_NAMES = tuple(GENRES)


@dataclass
class Score:
    """A composed song: global attributes, per-section energy and timed events.

    events: list of (time_s, kind, pitch_hz, duration_s, velocity); kind is an instrument
    ("bass", "guitar", "synth", "pluck", "pad", "vocal") or a drum ("kick", "snare", "hat").
    """

    genre: str
    duration_s: float
    tempo: float
    key: int  # 0..11, semitones above A
    minor: bool
    lead: str
    drums: bool
    distortion: float
    vocal: bool
    section_energy: list[float]  # one value per 4-bar section, in (0, 1]
    events: list[tuple[float, str, float, float, float]] = field(default_factory=list)

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo

    @property
    def bar_starts(self) -> np.ndarray:
        """Start times of every bar (4 beats), `(n_bars,)` seconds."""
        return np.arange(0.0, self.duration_s, 4 * self.beat_s)


def song_tags(score: Score) -> list[str]:
    """The tags that follow from a score: what a listener would say of the rendered audio."""
    tags = {
        "fast": score.tempo >= 130,
        "slow": score.tempo < 90,
        "distorted": score.distortion > 0,
        "acoustic": score.lead == "pluck",
        "electronic": score.lead == "synth",
        "minor": score.minor,
        "major": not score.minor,
        "drums": score.drums,
        "ambient": score.lead == "pad" and not score.drums,
        "vocal": score.vocal,
    }
    return [t for t in TAGS if tags[t]]


def compose(genre: str, duration_s: float, rng: np.random.Generator) -> Score:
    """Compose a song of `genre` lasting `duration_s` seconds."""
    g = GENRES[genre]
    tempo = float(rng.uniform(*g.tempo))
    minor = bool(rng.random() < g.minor_p)
    lead = str(rng.choice(list(g.instruments), p=list(g.instruments.values())))
    drums = g.drums is not None and bool(rng.random() < g.drums_p)
    distortion = float(rng.uniform(*g.distortion)) if lead == "guitar" else 0.0
    beat = 60.0 / tempo
    n_sections = int(math.ceil(duration_s / (16 * beat)))
    score = Score(genre, duration_s, tempo, int(rng.integers(12)), minor, lead, drums, distortion,
                  bool(rng.random() < g.vocal_p), list(rng.uniform(0.35, 1.0, n_sections)))
    score.events = _harmony_events(score, g, rng) + (_drum_events(score, g.drums, rng) if drums else [])
    score.events.sort(key=lambda e: (e[0], e[1]))
    return score


def _scale(score: Score) -> np.ndarray:
    """Semitone offsets of the song's scale, `(7,)`."""
    return np.array([0, 2, 3, 5, 7, 8, 10] if score.minor else [0, 2, 4, 5, 7, 9, 11])


def _hz(semitones_above_a2: float) -> float:
    return 110.0 * 2 ** (semitones_above_a2 / 12)


def _harmony_events(score: Score, g: Genre, rng: np.random.Generator) -> list:
    """Bass, lead and vocal notes over a four-chord loop (I-V-vi-IV or i-VI-III-VII)."""
    scale, beat = _scale(score), score.beat_s
    degrees = [0, 5, 2, 6] if score.minor else [0, 4, 5, 3]
    events = []
    for bar, t0 in enumerate(score.bar_starts):
        energy = score.section_energy[min(bar // 4, len(score.section_energy) - 1)]
        root = score.key + scale[degrees[bar % 4]]
        chord = [root, root + (3 if score.minor and degrees[bar % 4] in (0, 3, 4) else 4), root + 7]
        if score.lead == "pad":
            events += [(t0, "pad", _hz(n + 12), 4 * beat, 0.5 * energy) for n in chord]
        for b in range(4):
            events.append((t0 + b * beat, "bass", _hz(root - 12), 0.9 * beat, 0.8 * energy))
            for s in range(g.density if score.lead != "pad" else 0):
                t = t0 + (b + s / g.density) * beat
                note = chord[int(rng.integers(3))] + 12 * int(rng.integers(1, 3))
                if score.lead == "guitar":
                    note = root + 12  # power chords on the root
                events.append((t, score.lead, _hz(note), beat / g.density, energy * rng.uniform(0.7, 1.0)))
            if score.vocal and rng.random() < 0.7:
                degree = int(rng.integers(7))
                events.append((t0 + b * beat, "vocal", _hz(score.key + scale[degree] + 24), beat, 0.6 * energy))
    return events


def _drum_events(score: Score, pattern: str, rng: np.random.Generator) -> list:
    """Kick, snare and hat hits of the genre's pattern, in sixteenths with swing for boombap."""
    grids = {  # 16 steps per bar: which steps hit
        "backbeat": {"kick": [0, 8, 10], "snare": [4, 12], "hat": list(range(0, 16, 2))},
        "four": {"kick": [0, 4, 8, 12], "snare": [4, 12], "hat": [2, 6, 10, 14]},
        "double": {"kick": list(range(16)), "snare": [4, 12], "hat": list(range(0, 16, 2))},
        "boombap": {"kick": [0, 7, 10], "snare": [4, 12], "hat": list(range(0, 16, 2))},
        "light": {"kick": [0, 8], "snare": [4, 12], "hat": [0, 4, 8, 12]},
    }[pattern]
    step = score.beat_s / 4
    swing = 0.3 * step if pattern == "boombap" else 0.0
    events = []
    for bar, t0 in enumerate(score.bar_starts):
        energy = score.section_energy[min(bar // 4, len(score.section_energy) - 1)]
        for drum, steps in grids.items():
            for s in steps:
                t = t0 + s * step + (swing if s % 2 else 0.0)
                events.append((t, drum, 0.0, 0.2, energy * rng.uniform(0.8, 1.0)))
    return events


def render_audio(score: Score, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Render a score to `(2, samples)` float32 stereo in [-1, 1]."""
    n = int(round(score.duration_s * sample_rate))
    mix = np.zeros((2, n), np.float32)
    pans = {"bass": 0.5, "kick": 0.5, "snare": 0.45, "hat": 0.65, "pad": 0.5, "vocal": 0.5,
            "guitar": 0.35, "synth": 0.6, "pluck": 0.4}
    for t, kind, hz, dur, vel in score.events:
        start = int(t * sample_rate)
        note = _render_event(kind, hz, dur, vel, score.distortion, sample_rate, rng)[:max(0, n - start)]
        pan = pans[kind]
        mix[0, start:start + len(note)] += (1 - pan) * note
        mix[1, start:start + len(note)] += pan * note
    fade = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.01 * sample_rate))
    mix *= fade
    return (0.9 * mix / max(1e-6, float(np.abs(mix).max()))).astype(np.float32)


def _render_event(kind: str, hz: float, dur: float, vel: float, distortion: float, sr: int,
                  rng: np.random.Generator) -> np.ndarray:
    """One note or drum hit, `(samples,)` float32."""
    if kind in ("kick", "snare", "hat"):
        length = {"kick": 0.3, "snare": 0.2, "hat": 0.05}[kind]
        t = np.arange(int(length * sr)) / sr
        if kind == "kick":
            phase = 2 * np.pi * (45 * t + 75 * (1 - np.exp(-t / 0.04)) * 0.04)
            return (vel * np.sin(phase) * np.exp(-t / 0.12)).astype(np.float32)
        noise = rng.standard_normal(len(t))
        if kind == "hat":
            return (0.25 * vel * np.diff(noise, prepend=0) * np.exp(-t / 0.012)).astype(np.float32)
        return (vel * (0.5 * noise + 0.5 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.06)).astype(np.float32)
    tail = {"pad": 1.0, "pluck": 0.6}.get(kind, 0.05)
    t = np.arange(int((dur + tail) * sr)) / sr
    if kind == "bass":
        wave = np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t)
        env = np.exp(-t / (0.6 * dur))
    elif kind == "guitar":  # saw power chord (root + fifth), clipped by tanh when distorted
        saw = sum(2 * ((t * f) % 1.0) - 1 for f in (hz, 1.5 * hz, 0.5 * hz))
        wave = np.tanh(distortion * saw) if distortion > 0 else 0.4 * saw
        env = np.clip((dur + 0.05 - t) / 0.05, 0, 1)
    elif kind == "synth":  # two detuned square-ish saws
        wave = sum(np.sign(np.sin(2 * np.pi * f * t)) * 0.5 + (2 * ((t * f) % 1.0) - 1) * 0.3
                   for f in (hz, hz * 1.007))
        env = np.clip((dur - t) / 0.02, 0, 1) * np.minimum(1, t / 0.005)
    elif kind == "pluck":  # decaying harmonics, higher ones faster: acoustic-like
        wave = sum(np.sin(2 * np.pi * k * hz * t) * np.exp(-t * (2 + 3 * k)) / k for k in range(1, 7))
        env = np.minimum(1, t / 0.002)
    elif kind == "pad":  # slow swell of slightly detuned sines
        wave = sum(np.sin(2 * np.pi * f * t) for f in (hz, hz * 1.003, hz * 2.001))
        env = np.sin(np.pi * np.clip(t / (dur + tail), 0, 1)) ** 2
    else:  # vocal: harmonics shaped by two formants, with vibrato
        f0 = hz * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        wave = sum(np.sin(k * phase) * (np.exp(-((k * hz - 700) / 250) ** 2) + 0.6 * np.exp(-((k * hz - 1200) / 300) ** 2) + 0.1)
                   for k in range(1, 16))
        env = np.clip((dur - t) / 0.05, 0, 1) * np.minimum(1, t / 0.04)
    return (vel * 0.3 * wave * env).astype(np.float32)


@dataclass
class Driver:
    """What a picture follows, sampled at the video frame rate.

    loudness, onset: `(n_frames,)` in [0, 1]; bars: bar start times in seconds;
    tempo in bpm; hue in [0, 1); minor in [0, 1].
    """

    loudness: np.ndarray
    onset: np.ndarray
    bars: np.ndarray
    tempo: float
    hue: float
    minor: float


def score_driver(score: Score, fps: int, n_frames: int) -> Driver:
    """The driver a song gives a picture: section loudness and decaying onset impulses."""
    times = np.arange(n_frames) / fps
    energy = np.array(score.section_energy)
    section = np.minimum((times / (16 * score.beat_s)).astype(int), len(energy) - 1)
    onset = np.zeros(n_frames)
    weights = {"kick": 1.0, "snare": 0.8, "hat": 0.15}
    for t, kind, _, _, vel in score.events:
        w = weights.get(kind, 0.25)
        i = int(np.ceil(t * fps))
        if i < n_frames:
            onset[i:] += w * vel * np.exp(-(times[i:] - t) / 0.05)
    onset = onset / max(1e-6, onset.max())
    return Driver(energy[section], onset, score.bar_starts, score.tempo, score.key / 12, float(score.minor))


def mix_drivers(own: Driver, phantom: Driver, c: float) -> tuple[Driver, np.ndarray]:
    """The driver at coupling `c`, and the weight (c or 1 - c) attached to each bar start.

    Returns the mixed driver (bars: own and phantom bar starts together, sorted) and
    `(n_bars,)` the cut-probability factor for each of those bars.
    """
    dh = ((phantom.hue - own.hue + 0.5) % 1.0) - 0.5  # shortest way round the hue circle
    bars = np.concatenate([own.bars, phantom.bars])
    weight = np.concatenate([np.full(len(own.bars), c), np.full(len(phantom.bars), 1 - c)])
    order = np.argsort(bars, kind="stable")
    mixed = Driver(
        loudness=c * own.loudness + (1 - c) * phantom.loudness,
        onset=c * own.onset + (1 - c) * phantom.onset,
        bars=bars[order],
        tempo=float(np.exp(c * np.log(own.tempo) + (1 - c) * np.log(phantom.tempo))),
        hue=float((own.hue + (1 - c) * dh) % 1.0),
        minor=c * own.minor + (1 - c) * phantom.minor,
    )
    return mixed, weight[order]


def render_frames(style: Genre, driver: Driver, cut_weight: np.ndarray, fps: int, n_frames: int,
                  size: tuple[int, int], rng: np.random.Generator):
    """Draw the picture: yields `(height, width, 3)` uint8 frames at `size` = (width, height)."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx, yy = xx / height, yy / height  # units of picture height
    shade = (0.7 + 0.3 * yy)[..., None]  # background gradient, darker at the top
    aspect = width / height
    cuts = driver.bars[rng.random(len(driver.bars)) < cut_weight * style.cut_rate]
    cut_frames = set((cuts * fps).astype(int))
    n_shapes = int(rng.integers(3, 8))
    hue_jitter = float(rng.uniform(-0.06, 0.06))
    speed = driver.tempo / 120.0
    saturation = style.saturation * (1.0 - 0.45 * driver.minor)

    def new_scene():
        return dict(pos=rng.uniform([0, 0], [aspect, 1], (n_shapes, 2)),
                    vel=rng.normal(0, 0.12, (n_shapes, 2)),
                    radius=rng.uniform(0.05, 0.16, n_shapes),
                    hue=(style.hue + driver.hue * 0.35 + hue_jitter + rng.uniform(-0.05, 0.05, n_shapes)) % 1.0,
                    phase=rng.uniform(0, 2 * np.pi, n_shapes))

    scene = new_scene()
    for i in range(n_frames):
        if i in cut_frames:
            scene = new_scene()
        t = i / fps
        loud, onset = driver.loudness[i], driver.onset[i]
        bg = _hsv(np.float32(style.hue + driver.hue * 0.35 + hue_jitter), saturation * 0.6, 0.12 + 0.45 * loud)
        frame = shade * bg
        for k in range(n_shapes):
            mask = _shape_mask(style, scene, k, t, speed, onset, xx, yy, aspect)
            color = _hsv(np.float32(scene["hue"][k]), saturation, 0.45 + 0.5 * loud)
            np.copyto(frame, color, where=mask[..., None])
        frame += 0.4 * onset  # a flash on every onset
        if style.black_and_white:
            frame[:] = frame.mean(axis=2, keepdims=True)
        yield np.clip(frame * 255, 0, 255).astype(np.uint8)


def _shape_mask(style: Genre, scene: dict, k: int, t: float, speed: float, onset: float,
                xx: np.ndarray, yy: np.ndarray, aspect: float) -> np.ndarray:
    """Boolean `(height, width)` mask of shape k of the scene at time t."""
    if style.motion == "orbit":
        angle = scene["phase"][k] + 0.6 * speed * t
        cx = aspect / 2 + 0.3 * np.cos(angle) * (1 + k % 3) / 2
        cy = 0.5 + 0.3 * np.sin(angle) * (1 + k % 3) / 2
    else:
        cx, cy = (scene["pos"][k] + scene["vel"][k] * speed * t) % [aspect, 1]
        if style.motion == "bounce":
            cy = 0.5 + 0.35 * abs(math.sin(math.pi * speed * 2 * t + scene["phase"][k])) - 0.17
    r = scene["radius"][k] * (1 + 0.8 * onset)
    if style.shape == "circles":
        return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    if style.shape == "rings":
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        return np.abs(d - 2 * r) < 0.015 + 0.02 * onset
    if style.shape == "bars":
        x0 = (k + 0.5) * aspect / len(scene["radius"])
        return (np.abs(xx - x0) < 0.04) & (yy > 1 - 4 * r * (0.3 + 0.7 * onset) - 0.1 * np.sin(cy * 6))
    if style.shape == "stripes":
        return np.abs(((yy + xx * 0.3 - cy) % 0.5) - 0.25) < r * 0.4
    return (np.abs(xx - cx) < 1.6 * r) & (np.abs(yy - cy) < r)  # rects


def _hsv(h: np.float32, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] to an RGB `(3,)` float32 colour."""
    i = int(h * 6) % 6
    f = float(h * 6 - int(h * 6))
    p, q, u = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, u, p), (q, v, p), (p, v, u), (p, q, v), (u, p, v), (v, p, q)][i], np.float32)


@dataclass(frozen=True)
class SynthSpec:
    """Settings of a synthetic corpus; saved next to it as synth.json."""

    n_videos: int = 120
    seed: int = 0
    coupling: float = 0.5
    style_coupling: float = 1.0
    min_seconds: float = 30.0
    max_seconds: float = 90.0
    size: tuple[int, int] = (768, 432)


def synth_video_id(index: int) -> str:
    """The id of the corpus's video `index`, e.g. `mv00042`."""
    return f"mv{index:05d}"


def video_plan(spec: SynthSpec, index: int) -> dict:
    """Everything decided about video `index` before rendering: one metadata row plus scores."""
    genre = GENRE_NAMES[(index + spec.seed) % len(GENRE_NAMES)]
    fmt = np.random.default_rng([spec.seed, index, FORMAT])
    duration = round(float(fmt.uniform(spec.min_seconds, spec.max_seconds)), 1)
    fps = int(fmt.choice([15, 24, 25, 30]))
    sample_rate = int(fmt.choice([44100, 48000]))
    score = compose(genre, duration, np.random.default_rng([spec.seed, index, MUSIC]))
    style_rng = np.random.default_rng([spec.seed, index, STYLE])
    own_style = style_rng.random() < spec.style_coupling
    visual_genre = genre if own_style else GENRE_NAMES[int(style_rng.integers(len(GENRE_NAMES)))]
    phantom = compose(visual_genre, duration, np.random.default_rng([spec.seed, index, PHANTOM]))
    video_id = synth_video_id(index)
    row = dict(video_id=video_id, path=f"videos/{video_id}.mp4", genre=genre, tags=";".join(song_tags(score)),
               duration_s=duration, tempo_bpm=round(score.tempo, 2), key=score.key,
               mode="minor" if score.minor else "major", lead=score.lead, visual_genre=visual_genre,
               coupling=spec.coupling, style_coupling=spec.style_coupling, source_fps=fps, source_sample_rate=sample_rate)
    return dict(row=row, score=score, phantom=phantom)


def render_video(spec: SynthSpec, index: int, out_dir: Path, audio_from: Path | None = None) -> Path:
    """Render video `index` of the corpus to `out_dir/videos/<video_id>.mp4`.

    audio_from: a corpus with the same songs (see `make_corpus`) whose video `index` lends its
        audio stream, copied without re-encoding, instead of rendering and encoding it again.
    """
    plan = video_plan(spec, index)
    row, score = plan["row"], plan["score"]
    fps, n_frames = row["source_fps"], int(round(row["duration_s"] * row["source_fps"]))
    if audio_from is None:
        audio = render_audio(score, row["source_sample_rate"], np.random.default_rng([spec.seed, index, MUSIC, 1]))
    else:
        audio = Path(audio_from) / row["path"]
    own = score_driver(score, fps, n_frames)
    driver, cut_weight = mix_drivers(own, score_driver(plan["phantom"], fps, n_frames), spec.coupling)
    width, height = spec.size
    small = (max(16, width // 4 // 2 * 2), max(16, height // 4 // 2 * 2))
    frames = render_frames(GENRES[row["visual_genre"]], driver, cut_weight, fps, n_frames, small,
                           np.random.default_rng([spec.seed, index, VISUAL]))
    path = out_dir / row["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(path, frames, fps, audio, row["source_sample_rate"], size=spec.size, preset="ultrafast")


def make_corpus(out_dir: str | Path, spec: SynthSpec = SynthSpec(), workers: int = 1,
                audio_from: str | Path | None = None) -> Path:
    """Write (or complete) a synthetic corpus: `out_dir/videos/*.mp4` and `out_dir/metadata.csv`.

    Resumable: videos already present are kept. A folder made with other settings is refused
    rather than mixed. Returns the path of metadata.csv.

    audio_from: a complete corpus made with the same songs (the same `seed`, `min_seconds` and
        `max_seconds`, and at least as many videos; the knobs and the size may differ). Its audio
        streams are copied instead of rendered and encoded again, which halves the cost of a
        coupling sweep and keeps its audio byte-identical by construction.
    """
    out_dir = Path(out_dir)
    if audio_from is not None:
        _check_same_songs(spec, Path(audio_from))
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = json.dumps(asdict(spec), sort_keys=True)
    spec_file = out_dir / "synth.json"
    if spec_file.exists() and json.loads(spec_file.read_text()) != json.loads(settings):
        raise ValueError(f"{out_dir} holds a corpus made with other settings ({spec_file.read_text().strip()}); "
                         f"delete it or choose another folder")
    spec_file.write_text(settings)
    rows = [video_plan(spec, i)["row"] for i in range(spec.n_videos)]
    todo = [i for i, row in enumerate(rows) if not (out_dir / row["path"]).exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, workers), initializer=exit_with_parent) as pool:
            jobs = pool.map(render_video, [spec] * len(todo), todo, [out_dir] * len(todo), [audio_from] * len(todo))
            for _ in tqdm(jobs, total=len(todo), desc="synth videos", unit="video"):
                pass
    metadata = out_dir / "metadata.csv"
    with atomic_write(metadata) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return metadata


def _check_same_songs(spec: SynthSpec, source: Path) -> None:
    """Raise ValueError unless the corpus at `source` holds the songs `spec` would render."""
    spec_file = source / "synth.json"
    if not spec_file.is_file():
        raise ValueError(f"audio_from={source} is not a synthetic corpus (no synth.json)")
    theirs = json.loads(spec_file.read_text())
    differ = [key for key in ("seed", "min_seconds", "max_seconds") if theirs.get(key) != getattr(spec, key)]
    if differ or theirs.get("n_videos", 0) < spec.n_videos:
        raise ValueError(f"audio_from={source} has other songs ({', '.join(differ or ['fewer videos'])} differ "
                         f"from this corpus's); its audio cannot be reused")

def _size(text: str) -> tuple[int, int]:
    """Parse 'WIDTHxHEIGHT' (even numbers, as H.264 with yuv420p needs)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 768x432, not {text!r}") from None
    if width % 2 or height % 2 or min(width, height) < 32:
        raise argparse.ArgumentTypeError(f"size {text!r}: width and height must be even and at least 32")
    return width, height


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1]")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb synth`."""
    d = SynthSpec()
    parser.add_argument("--out", required=True, help="corpus folder: videos/ and metadata.csv go here")
    parser.add_argument("--n-videos", type=int, default=d.n_videos)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--coupling", type=_unit, default=d.coupling,
                        help="how much the picture follows this video's own audio, 0..1 (see mvnb.synth)")
    parser.add_argument("--style-coupling", type=_unit, default=d.style_coupling,
                        help="probability that the visual style is the video's own genre's, 0..1")
    parser.add_argument("--min-seconds", type=float, default=d.min_seconds)
    parser.add_argument("--max-seconds", type=float, default=d.max_seconds)
    parser.add_argument("--size", type=_size, default=d.size, help="WIDTHxHEIGHT, default 768x432")
    parser.add_argument("--workers", type=int, default=1, help="videos rendered in parallel")


def run(args: argparse.Namespace) -> int:
    """Write the corpus described by `args`."""
    if not 0 < args.min_seconds <= args.max_seconds:
        raise SystemExit("synth: need 0 < --min-seconds <= --max-seconds")
    spec = SynthSpec(args.n_videos, args.seed, args.coupling, args.style_coupling,
                     args.min_seconds, args.max_seconds, tuple(args.size))
    print(make_corpus(args.out, spec, workers=args.workers))
    return 0
