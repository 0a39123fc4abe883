"""The songs of the synthetic corpus: genres, scores and their audio.

A song is a *score*: tempo, key, mode, instruments, sections of varying energy and a
list of note and drum events. Genres differ the way genres do (tempo range, drum pattern,
bass, major/minor, clean vs distorted, acoustic-like vs synthetic, density), and tags are
read off the score actually rendered (`song_tags`), so a probe can learn them. Genres also
overlap as real ones do: shared tempo ranges, borrowed instruments and drum patterns, and a
share of crossover songs (`compose`), so that genre is not free for any encoder. Loud sections
are arranged more densely (a hat on every sixteenth, the lead doubled an octave up).

A genre (`Genre`) also carries the visual style its videos wear (`mvnb.synth` draws it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DENSE_ENERGY = 0.7  # sections at least this loud are arranged more densely
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
    "pop": Genre(
        (95, 130),
        0.2,
        {"synth": 0.45, "pluck": 0.4, "guitar": 0.15},
        "backbeat",
        1.0,
        (0, 0),
        0.9,
        2,
        0.92,
        0.8,
        "circles",
        "bounce",
        0.5,
    ),
    "rock": Genre(
        (100, 150),
        0.4,
        {"guitar": 0.85, "synth": 0.15},
        "backbeat",
        1.0,
        (4, 8),
        0.6,
        2,
        0.05,
        0.7,
        "rects",
        "drift",
        0.35,
    ),
    "metal": Genre(
        (135, 200),
        0.9,
        {"guitar": 1.0},
        "double",
        1.0,
        (15, 30),
        0.3,
        4,
        0.0,
        0.0,
        "stripes",
        "drift",
        0.6,
        black_and_white=True,
    ),
    "electronic": Genre(
        (110, 140),
        0.6,
        {"synth": 0.8, "pad": 0.2},
        "four",
        1.0,
        (0, 0),
        0.2,
        4,
        0.55,
        1.0,
        "bars",
        "orbit",
        0.7,
    ),
    "hiphop": Genre(
        (75, 105),
        0.6,
        {"synth": 0.45, "pluck": 0.35, "pad": 0.2},
        "boombap",
        1.0,
        (0, 0),
        0.8,
        1,
        0.12,
        0.9,
        "rects",
        "bounce",
        0.3,
    ),
    "ambient": Genre(
        (60, 95),
        0.4,
        {"pad": 0.8, "pluck": 0.2},
        None,
        0.0,
        (0, 0),
        0.15,
        1,
        0.45,
        0.5,
        "rings",
        "orbit",
        0.08,
    ),
    "folk": Genre(
        (80, 125),
        0.25,
        {"pluck": 0.8, "guitar": 0.2},
        "light",
        0.35,
        (0, 0),
        0.7,
        2,
        0.1,
        0.0,
        "circles",
        "drift",
        0.15,
        black_and_white=True,
    ),
}
DRUM_PATTERNS = ("backbeat", "four", "double", "boombap", "light")
CROSSOVER_P = 0.25  # share of songs that take their tempo, lead, drums and guitar sound from another genre
BORROWED_DRUMS_P = 0.2  # probability that a song with drums plays another genre's pattern
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
    """Compose a song of `genre` lasting `duration_s` seconds.

    Genres overlap as real ones do: their tempo ranges and instruments are shared in part; with
    probability `CROSSOVER_P` a song is a crossover, taking tempo, lead, drums and guitar sound from
    a genre drawn at random (keeping its own mode, vocals, density and label); and with
    probability `BORROWED_DRUMS_P` its drums play a pattern drawn from all of `DRUM_PATTERNS`.
    """
    g = GENRES[genre]
    source = GENRES[GENRE_NAMES[int(rng.integers(len(GENRE_NAMES)))]] if rng.random() < CROSSOVER_P else g
    tempo = float(rng.uniform(*source.tempo))
    minor = bool(rng.random() < g.minor_p)
    lead = str(rng.choice(list(source.instruments), p=list(source.instruments.values())))
    pattern = str(rng.choice(DRUM_PATTERNS)) if rng.random() < BORROWED_DRUMS_P else source.drums
    drums = pattern is not None and bool(rng.random() < source.drums_p)
    distortion = float(rng.uniform(*source.distortion)) if lead == "guitar" else 0.0
    beat = 60.0 / tempo
    n_sections = int(math.ceil(duration_s / (16 * beat)))
    score = Score(
        genre,
        duration_s,
        tempo,
        int(rng.integers(12)),
        minor,
        lead,
        drums,
        distortion,
        bool(rng.random() < g.vocal_p),
        list(rng.uniform(0.35, 1.0, n_sections)),
    )
    score.events = _harmony_events(score, g, rng) + (_drum_events(score, pattern, rng) if drums else [])
    score.events.sort(key=lambda e: (e[0], e[1]))
    return score


def _scale(score: Score) -> np.ndarray:
    """Semitone offsets of the song's scale, `(7,)`."""
    return np.array([0, 2, 3, 5, 7, 8, 10] if score.minor else [0, 2, 4, 5, 7, 9, 11])


def _hz(semitones_above_a2: float) -> float:
    return 110.0 * 2 ** (semitones_above_a2 / 12)


def _harmony_events(score: Score, g: Genre, rng: np.random.Generator) -> list:
    """Bass, lead and vocal notes over a four-chord loop (I-V-vi-IV or i-VI-III-VII); in loud sections
    (energy ≥ `DENSE_ENERGY`) the lead is doubled an octave up, as arrangements thicken when songs get
    louder."""
    scale, beat = _scale(score), score.beat_s
    degrees = [0, 5, 2, 6] if score.minor else [0, 4, 5, 3]
    events = []
    for bar, t0 in enumerate(score.bar_starts):
        energy = score.section_energy[min(bar // 4, len(score.section_energy) - 1)]
        root = score.key + scale[degrees[bar % 4]]
        chord = [root, root + (3 if score.minor and degrees[bar % 4] in (0, 3, 4) else 4), root + 7]
        dense = energy >= DENSE_ENERGY
        if score.lead == "pad":
            events += [
                (t0, "pad", _hz(n + 12 * octave), 4 * beat, 0.5 * energy / octave)
                for n in chord
                for octave in ((1, 2) if dense else (1,))
            ]
        for b in range(4):
            events.append((t0 + b * beat, "bass", _hz(root - 12), 0.9 * beat, 0.8 * energy))
            for s in range(g.density if score.lead != "pad" else 0):
                t = t0 + (b + s / g.density) * beat
                note = chord[int(rng.integers(3))] + 12 * int(rng.integers(1, 3))
                if score.lead == "guitar":
                    note = root + 12  # power chords on the root
                velocity = energy * rng.uniform(0.7, 1.0)
                events.append((t, score.lead, _hz(note), beat / g.density, velocity))
                if dense:
                    events.append((t, score.lead, _hz(note + 12), beat / g.density, 0.6 * velocity))
            if score.vocal and rng.random() < 0.7:
                degree = int(rng.integers(7))
                events.append(
                    (t0 + b * beat, "vocal", _hz(score.key + scale[degree] + 24), beat, 0.6 * energy)
                )
    return events


def _drum_events(score: Score, pattern: str, rng: np.random.Generator) -> list:
    """Kick, snare and hat hits of the genre's pattern, in sixteenths with swing for boombap; loud sections
    (energy ≥ `DENSE_ENERGY`) put a hat on every sixteenth."""
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
        dense = energy >= DENSE_ENERGY
        for drum, steps in grids.items():
            for s in range(16) if dense and drum == "hat" else steps:
                t = t0 + s * step + (swing if s % 2 else 0.0)
                events.append((t, drum, 0.0, 0.2, energy * rng.uniform(0.8, 1.0)))
    return events


def render_audio(score: Score, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Render a score to `(2, samples)` float32 stereo in [-1, 1]."""
    n = int(round(score.duration_s * sample_rate))
    mix = np.zeros((2, n), np.float32)
    pans = {
        "bass": 0.5,
        "kick": 0.5,
        "snare": 0.45,
        "hat": 0.65,
        "pad": 0.5,
        "vocal": 0.5,
        "guitar": 0.35,
        "synth": 0.6,
        "pluck": 0.4,
    }
    for t, kind, hz, dur, vel in score.events:
        start = int(t * sample_rate)
        note = _render_event(kind, hz, dur, vel, score.distortion, sample_rate, rng)[: max(0, n - start)]
        pan = pans[kind]
        mix[0, start : start + len(note)] += (1 - pan) * note
        mix[1, start : start + len(note)] += pan * note
    fade = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.01 * sample_rate))
    mix *= fade
    return (0.9 * mix / max(1e-6, float(np.abs(mix).max()))).astype(np.float32)


def _render_event(
    kind: str, hz: float, dur: float, vel: float, distortion: float, sr: int, rng: np.random.Generator
) -> np.ndarray:
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
        return (vel * (0.5 * noise + 0.5 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.06)).astype(
            np.float32
        )
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
        wave = sum(
            np.sign(np.sin(2 * np.pi * f * t)) * 0.5 + (2 * ((t * f) % 1.0) - 1) * 0.3
            for f in (hz, hz * 1.007)
        )
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
        wave = sum(
            np.sin(k * phase)
            * (np.exp(-(((k * hz - 700) / 250) ** 2)) + 0.6 * np.exp(-(((k * hz - 1200) / 300) ** 2)) + 0.1)
            for k in range(1, 16)
        )
        env = np.clip((dur - t) / 0.05, 0, 1) * np.minimum(1, t / 0.04)
    return (vel * 0.3 * wave * env).astype(np.float32)
