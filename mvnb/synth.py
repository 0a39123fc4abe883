"""The embedded default corpus: synthetic music videos with ground-truth genres and tags.

Each video is a real mp4 (H.264 + AAC, 44.1 or 48 kHz stereo, 15-30 fps or one rate for all) whose music is
composed and rendered here, and whose picture is drawn in the visual style of a genre.

Music. A song is a *score* composed in the style of a genre and rendered to audio (`mvnb.songs`);
tags are read off the score actually rendered, so a probe can learn them. The
ground truth of every song, second by second, is written beside the corpus (`factor_table`).

Picture. Every frame is drawn from a *driver* (`Driver`): what a listener hears, sampled at the
frame rate. The picture may carry only what the music makes audible: nothing in it is derived
from a video's id, seed or index (no digits, codes or per-song colours), so at coupling 0 the
pixels say nothing about the song on the soundtrack (a test reads this out of the features).
Each choice below was made with the read-out panel of notebook 06 (`mvnb.readouts`), so that
frozen encoders at the sweep's sizes (4 frames of a 3 s window, 192x108, rendered at 10 fps) can see it:

- whole-frame brightness follows the section energy (background 0.08-0.68, shapes 0.5-0.95);
- sparkles, up to `MAX_SPARKLES` bright dots a frame, count the beats of the last
  `BEAT_WINDOW_S`: the pulse a listener taps along to, so their number follows the tempo;
- drum hits (kick, snare) flash the frame and swell the shapes, decaying over `PULSE_DECAY_S`,
  long enough for a clip of a few frames to catch them (50 ms flashes were missed);
- shapes travel at `SHAPE_SPEED` x (tempo / 120)^1.5 picture heights per second, whatever their
  kind of motion, and leave a motion streak of `BLUR_STEPS` positions: with 4 frames in 3 s,
  motion alone is aliased, the streak's length shows the speed in every frame;
- the shapes' colour is the lead instrument's (`LEAD_HUES`: timbre, which musicnn hears, rather
  than the key, which it does not), their saturation falls in minor keys, and grain of sd up
  to `GRIT` follows the guitar's distortion;
- each bar start may cut to a new scene (the style's cut rate).

The style (`Genre`: background hue, shape, kind of motion, cut rate, black-and-white
background) is a genre's look. Two knobs decide whose driver and whose style a video has:

- `coupling` c in [0, 1]. The video is driven by a mix of this song's driver and the driver of
  an independent *phantom* song, composed like the music of the genre whose style the video
  wears. Envelopes, grain and mode mix linearly, c * own + (1 - c) * phantom; the speed follows
  the log-mixed tempo, the colour the lead's hue mixed the short way round the colour circle;
  each bar start of the own song cuts with probability c * cut_rate, each of the phantom's with
  (1 - c) * cut_rate. At c = 1 the video follows its audio exactly, at c = 0 a song nobody hears.
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
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .corpus import parse_size, synth_video_id
from .io import write_csv, write_text
from .media import write_mp4
from .songs import GENRE_NAMES, GENRES, Genre, Score, compose, render_audio, song_tags
from .workers import exit_with_parent

MUSIC, PHANTOM, VISUAL, STYLE, FORMAT = range(5)  # random streams per video
FACTORS_FILE = "factors.csv"
MIN_CLI_SIZE = 32  # the smallest width and height `python -m mvnb synth --size` takes


FACTOR_STEP_S = 1.0  # the factor table's time resolution
LEADS = ("guitar", "synth", "pluck", "pad")


def song_factors(score: Score) -> pd.DataFrame:
    """What a listener hears in a song, second by second: one row per `FACTOR_STEP_S` step.

    Columns: `t_s` (start of the step), `energy` (the mean section energy over the step, the
    score's loudness), `onset_density` (note and drum onsets per second in the step), and the
    song's constants `tempo_bpm`, `key_sin` and `key_cos` (the key on the circle of fifths),
    `minor` (0/1), `distortion` and `lead` (one of `LEADS`).
    """
    steps = np.arange(0.0, score.duration_s, FACTOR_STEP_S)
    section_s = 16 * score.beat_s
    grid = np.linspace(0.0, FACTOR_STEP_S, 33)[:-1]  # 32 samples per step, for the mean section energy
    times = np.minimum(steps[:, None] + grid, score.duration_s - 1e-9)
    energy = np.asarray(score.section_energy)[
        np.minimum((times / section_s).astype(int), len(score.section_energy) - 1)
    ]
    onsets = np.histogram([e[0] for e in score.events], bins=np.append(steps, steps[-1] + FACTOR_STEP_S))[0]
    angle = 2 * np.pi * ((7 * score.key) % 12) / 12
    return pd.DataFrame(
        {
            "t_s": steps,
            "energy": energy.mean(1),
            "onset_density": onsets / FACTOR_STEP_S,
            "tempo_bpm": score.tempo,
            "key_sin": np.sin(angle),
            "key_cos": np.cos(angle),
            "minor": float(score.minor),
            "distortion": score.distortion,
            "lead": score.lead,
        }
    )


def factor_table(spec: SynthSpec) -> pd.DataFrame:
    """The ground truth of every video's music, keyed by `video_id`, `source` and `t_s`.

    source "heard" is the song on the soundtrack; "phantom" the unheard song the picture follows
    where the coupling is below 1 (absent at coupling 1). Other columns as in `song_factors`.
    """
    frames = []
    for index in range(spec.n_videos):
        plan = video_plan(spec, index)
        for source, score in (("heard", plan["score"]), ("phantom", plan["phantom"])):
            if source == "heard" or spec.coupling < 1:
                frames.append(song_factors(score).assign(video_id=plan["row"]["video_id"], source=source))
    table = pd.concat(frames, ignore_index=True)
    return table[["video_id", "source", *[c for c in table.columns if c not in ("video_id", "source")]]]


LEAD_HUES = {
    "guitar": 0.02,
    "synth": 0.5,
    "pluck": 0.14,
    "pad": 0.68,
}  # what each lead sounds like, as a colour
DISTORTION_MAX = 30.0  # the largest guitar gain of any genre
PULSE_DECAY_S = 0.2  # long enough for a clip of a few frames to catch a drum hit
BEAT_WINDOW_S = 3.0  # sparkles count the beats of the last three seconds
BEATS_FULL = 10  # beats in that window (200 bpm) that light every sparkle
MAX_SPARKLES = 30
GRIT = 0.5  # sd of the grain at full distortion, in units of full brightness
SHAPE_SPEED = 0.5  # picture heights per second that a shape travels at 120 bpm
BLUR_STEPS = 3  # positions averaged per shape and frame: a motion streak whose length follows the speed
BLUR_S = 0.06  # time between those positions


@dataclass
class Driver:
    """What a picture follows, sampled at the video frame rate: only what the music makes audible.

    loudness, pulse, beats: `(n_frames,)` in [0, 1] (section energy rescaled from its range
    [0.35, 1]; decaying drum hits; beats in the last `BEAT_WINDOW_S`, as a share of
    `BEATS_FULL`); bars: bar start times in seconds; tempo in bpm; lead_hue in [0, 1) (the lead
    instrument's colour, `LEAD_HUES`); grit in [0, 1] (distortion / `DISTORTION_MAX`); minor in [0, 1].
    """

    loudness: np.ndarray
    pulse: np.ndarray
    beats: np.ndarray
    bars: np.ndarray
    tempo: float
    lead_hue: float
    grit: float
    minor: float


def score_driver(score: Score, fps: int, n_frames: int) -> Driver:
    """The driver a song gives a picture (see `Driver`)."""
    times = np.arange(n_frames) / fps
    energy = np.array(score.section_energy)
    section = np.minimum((times / (16 * score.beat_s)).astype(int), len(energy) - 1)
    beat_times = np.arange(
        -BEAT_WINDOW_S, score.duration_s, score.beat_s
    )  # counted in: no warm-up that dates a frame
    pulse = np.zeros(n_frames)
    for t, kind, _, _, vel in score.events:
        if kind in ("kick", "snare"):
            i = int(np.ceil(t * fps))
            pulse[i:] = np.maximum(pulse[i:], vel * np.exp(-(times[i:] - t) / PULSE_DECAY_S))
    recent = np.searchsorted(beat_times, times, side="right") - np.searchsorted(
        beat_times, times - BEAT_WINDOW_S, side="right"
    )
    return Driver(
        loudness=np.clip((energy[section] - 0.35) / 0.65, 0, 1),
        pulse=np.clip(pulse, 0, 1),
        beats=np.clip(recent / BEATS_FULL, 0, 1),
        bars=score.bar_starts,
        tempo=score.tempo,
        lead_hue=LEAD_HUES[score.lead],
        grit=min(1.0, score.distortion / DISTORTION_MAX),
        minor=float(score.minor),
    )


def mix_drivers(own: Driver, phantom: Driver, c: float) -> tuple[Driver, np.ndarray]:
    """The driver at coupling `c`, and the weight (c or 1 - c) attached to each bar start.

    Envelopes, grit and mode mix linearly, the tempo log-linearly, the lead's hue the short way
    round the colour circle. Returns the mixed driver (bars: own and phantom bar starts
    together, sorted) and `(n_bars,)` the cut-probability factor for each of those bars.
    """
    dh = ((phantom.lead_hue - own.lead_hue + 0.5) % 1.0) - 0.5  # shortest way round the hue circle
    bars = np.concatenate([own.bars, phantom.bars])
    weight = np.concatenate([np.full(len(own.bars), c), np.full(len(phantom.bars), 1 - c)])
    order = np.argsort(bars, kind="stable")
    mixed = Driver(
        loudness=c * own.loudness + (1 - c) * phantom.loudness,
        pulse=c * own.pulse + (1 - c) * phantom.pulse,
        beats=c * own.beats + (1 - c) * phantom.beats,
        bars=bars[order],
        tempo=float(np.exp(c * np.log(own.tempo) + (1 - c) * np.log(phantom.tempo))),
        lead_hue=float((own.lead_hue + (1 - c) * dh) % 1.0),
        grit=c * own.grit + (1 - c) * phantom.grit,
        minor=c * own.minor + (1 - c) * phantom.minor,
    )
    return mixed, weight[order]


def render_frames(
    style: Genre,
    driver: Driver,
    cut_weight: np.ndarray,
    fps: int,
    n_frames: int,
    size: tuple[int, int],
    rng: np.random.Generator,
):
    """Draw the picture: yields `(height, width, 3)` uint8 frames at `size` = (width, height).

    The style (the visual genre) sets the background hue, the shapes, their kind of motion,
    the cut rate and black-and-white backgrounds; the driver sets everything that moves with
    the music (see the module docstring).
    """
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx, yy = xx / height, yy / height  # units of picture height
    shade = (0.7 + 0.3 * yy)[..., None]  # background gradient, darker at the top
    aspect = width / height
    cuts = driver.bars[rng.random(len(driver.bars)) < cut_weight * style.cut_rate]
    cut_frames = set((cuts * fps).astype(int))
    n_shapes = int(rng.integers(3, 8))
    speed = (driver.tempo / 120.0) ** 1.5
    colourfulness = 1.0 - 0.45 * driver.minor

    def new_scene():
        return dict(
            pos=rng.uniform([0, 0], [aspect, 1], (n_shapes, 2)),
            vel=rng.normal(0, 0.12, (n_shapes, 2)),
            radius=rng.uniform(0.05, 0.16, n_shapes),
            hue=(driver.lead_hue + rng.uniform(-0.04, 0.04, n_shapes)) % 1.0,
            phase=rng.uniform(0, 2 * np.pi, n_shapes),
        )

    scene = new_scene()
    for i in range(n_frames):
        if i in cut_frames:
            scene = new_scene()
        t = i / fps
        loud, pulse = driver.loudness[i], driver.pulse[i]
        frame = shade * _hsv(np.float32(style.hue), style.saturation * 0.6 * colourfulness, 0.08 + 0.6 * loud)
        if style.black_and_white:
            frame[:] = frame.mean(axis=2, keepdims=True)
        for k in range(n_shapes):
            cover = np.mean(
                [
                    _shape_mask(style, scene, k, t - j * BLUR_S, speed, pulse, xx, yy, aspect)
                    for j in range(BLUR_STEPS)
                ],
                axis=0,
            )[..., None]
            color = _hsv(np.float32(scene["hue"][k]), 0.9 * colourfulness, 0.5 + 0.45 * loud)
            frame = frame * (1 - cover) + color * cover
        sparkles = rng.uniform(
            [0, 0], [width, height], (int(round(MAX_SPARKLES * driver.beats[i])), 2)
        ).astype(int)
        frame[sparkles[:, 1], sparkles[:, 0]] = 1.0
        frame += 0.35 * pulse + GRIT * driver.grit * rng.standard_normal(frame.shape[:2])[..., None]
        yield np.clip(frame * 255, 0, 255).astype(np.uint8)


def _shape_mask(
    style: Genre,
    scene: dict,
    k: int,
    t: float,
    speed: float,
    pulse: float,
    xx: np.ndarray,
    yy: np.ndarray,
    aspect: float,
) -> np.ndarray:
    """Boolean `(height, width)` mask of shape k of the scene at time t."""
    travel = SHAPE_SPEED * speed * t  # picture heights travelled by time t, whatever the kind of motion
    if style.motion == "orbit":
        radius = 0.15 * (1 + k % 3)
        angle = scene["phase"][k] + travel / radius
        cx, cy = aspect / 2 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)
    else:
        heading = scene["vel"][k] / max(1e-9, float(np.hypot(*scene["vel"][k])))
        cx, cy = (scene["pos"][k] + heading * travel) % [aspect, 1]
        if style.motion == "bounce":
            cy = 0.5 + 0.35 * abs(math.sin(math.pi * speed * 2 * t + scene["phase"][k])) - 0.17
    r = scene["radius"][k] * (1 + 0.8 * pulse)
    if style.shape == "circles":
        return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    if style.shape == "rings":
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        return np.abs(d - 2 * r) < 0.015 + 0.02 * pulse
    if style.shape == "bars":
        x0 = (k + 0.5) * aspect / len(scene["radius"])
        return (np.abs(xx - x0) < 0.04) & (yy > 1 - 4 * r * (0.3 + 0.7 * pulse) - 0.1 * np.sin(cy * 6))
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
    style_coupling: float = 0.5
    min_seconds: float = 30.0
    max_seconds: float = 90.0
    size: tuple[int, int] = (768, 432)
    # frames per second of every video; None: each video's is drawn from 15, 24, 25 and 30 (its
    # other draws are the same either way)
    fps: int | None = None


def video_plan(spec: SynthSpec, index: int) -> dict:
    """Everything decided about video `index` before rendering: one metadata row plus scores."""
    genre = GENRE_NAMES[(index + spec.seed) % len(GENRE_NAMES)]
    fmt = np.random.default_rng([spec.seed, index, FORMAT])
    duration = round(float(fmt.uniform(spec.min_seconds, spec.max_seconds)), 1)
    drawn_fps = int(fmt.choice([15, 24, 25, 30]))  # drawn even when fixed: the draws after it stay the same
    fps = spec.fps or drawn_fps
    sample_rate = int(fmt.choice([44100, 48000]))
    score = compose(genre, duration, np.random.default_rng([spec.seed, index, MUSIC]))
    style_rng = np.random.default_rng([spec.seed, index, STYLE])
    own_style = style_rng.random() < spec.style_coupling
    visual_genre = genre if own_style else GENRE_NAMES[int(style_rng.integers(len(GENRE_NAMES)))]
    phantom = compose(visual_genre, duration, np.random.default_rng([spec.seed, index, PHANTOM]))
    video_id = synth_video_id(index)
    row = dict(
        video_id=video_id,
        path=f"videos/{video_id}.mp4",
        genre=genre,
        tags=";".join(song_tags(score)),
        duration_s=duration,
        tempo_bpm=round(score.tempo, 2),
        key=score.key,
        mode="minor" if score.minor else "major",
        lead=score.lead,
        visual_genre=visual_genre,
        coupling=spec.coupling,
        style_coupling=spec.style_coupling,
        source_fps=fps,
        source_sample_rate=sample_rate,
    )
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
        audio = render_audio(
            score, row["source_sample_rate"], np.random.default_rng([spec.seed, index, MUSIC, 1])
        )
    else:
        audio = Path(audio_from) / row["path"]
    own = score_driver(score, fps, n_frames)
    driver, cut_weight = mix_drivers(own, score_driver(plan["phantom"], fps, n_frames), spec.coupling)
    width, height = spec.size
    small = (max(16, width // 4 // 2 * 2), max(16, height // 4 // 2 * 2))
    frames = render_frames(
        GENRES[row["visual_genre"]],
        driver,
        cut_weight,
        fps,
        n_frames,
        small,
        np.random.default_rng([spec.seed, index, VISUAL]),
    )
    path = out_dir / row["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(path, frames, fps, audio, row["source_sample_rate"], size=spec.size, preset="ultrafast")


def make_corpus(
    out_dir: str | Path, spec: SynthSpec = SynthSpec(), workers: int = 1, audio_from: str | Path | None = None
) -> Path:
    """Write (or complete) a synthetic corpus: `out_dir/videos/*.mp4`, `out_dir/metadata.csv` and the
    ground truth of its music, `out_dir/factors.csv` (`factor_table`).

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
    defaults = json.loads(json.dumps(asdict(SynthSpec())))  # for settings added since a corpus was made
    if spec_file.exists() and {**defaults, **json.loads(spec_file.read_text())} != json.loads(settings):
        raise ValueError(
            f"{out_dir} holds a corpus made with other settings ({spec_file.read_text().strip()}); "
            f"delete it or choose another folder"
        )
    write_text(spec_file, settings)
    rows = [video_plan(spec, i)["row"] for i in range(spec.n_videos)]
    todo = [i for i, row in enumerate(rows) if not (out_dir / row["path"]).exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, workers), initializer=exit_with_parent) as pool:
            jobs = pool.map(
                render_video, [spec] * len(todo), todo, [out_dir] * len(todo), [audio_from] * len(todo)
            )
            for _ in tqdm(jobs, total=len(todo), desc="synth videos", unit="video"):
                pass
    metadata = write_csv(out_dir / "metadata.csv", pd.DataFrame(rows))
    write_csv(out_dir / FACTORS_FILE, factor_table(spec))
    return metadata


def _check_same_songs(spec: SynthSpec, source: Path) -> None:
    """Raise ValueError unless the corpus at `source` holds the songs `spec` would render."""
    spec_file = source / "synth.json"
    if not spec_file.is_file():
        raise ValueError(f"audio_from={source} is not a synthetic corpus (no synth.json)")
    theirs = json.loads(spec_file.read_text())
    differ = [key for key in ("seed", "min_seconds", "max_seconds") if theirs.get(key) != getattr(spec, key)]
    if differ or theirs.get("n_videos", 0) < spec.n_videos:
        raise ValueError(
            f"audio_from={source} has other songs ({', '.join(differ or ['fewer videos'])} differ "
            f"from this corpus's); its audio cannot be reused"
        )


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
    parser.add_argument(
        "--coupling",
        type=_unit,
        default=d.coupling,
        help="how much the picture follows this video's own audio, 0..1 (see mvnb.synth)",
    )
    parser.add_argument(
        "--style-coupling",
        type=_unit,
        default=d.style_coupling,
        help="probability that the visual style is the video's own genre's, 0..1",
    )
    parser.add_argument("--min-seconds", type=float, default=d.min_seconds)
    parser.add_argument("--max-seconds", type=float, default=d.max_seconds)
    parser.add_argument(
        "--size",
        type=partial(parse_size, minimum=MIN_CLI_SIZE),
        default=d.size,
        help="WIDTHxHEIGHT, default 768x432",
    )
    parser.add_argument(
        "--fps",
        type=int,
        default=None,
        help="frames per second of every video (default: 15-30, drawn per video)",
    )
    parser.add_argument("--workers", type=int, default=1, help="videos rendered in parallel")


def run(args: argparse.Namespace) -> int:
    """Write the corpus described by `args`."""
    if not 0 < args.min_seconds <= args.max_seconds:
        raise SystemExit("synth: need 0 < --min-seconds <= --max-seconds")
    spec = SynthSpec(
        args.n_videos,
        args.seed,
        args.coupling,
        args.style_coupling,
        args.min_seconds,
        args.max_seconds,
        tuple(args.size),
        args.fps,
    )
    print(make_corpus(args.out, spec, workers=args.workers))
    return 0
