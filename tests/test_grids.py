"""mvnb.grids: neighbour grids within an embed budget, tiles from other stores, and reels."""

import html
import re

import av
import pytest
from test_explore import dominant_hz, grid_table, make_segment, players, probe, write_store

from mvnb import explore, grids


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store"))


def test_grid_tiles_are_muted_players_with_captions_while_the_budget_lasts(store):
    root, segments = store
    table = grid_table(segments)
    page = grids.neighbour_grid(table, root, explore.EmbedBudget(100))
    videos = players(page)
    assert len(videos) == len(table) and "poster frame" not in page
    assert all(
        "controls" in v and "muted" in v and "preload='metadata'" in v and "data:video/mp4;base64," in v
        for v in videos
    )
    assert page.count("<tr>") == 1 + 2  # header + one row per seed
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"src='[^']*'", "", page)))
    assert "seed" in text and "cosine 0.9000" in text and "fast, drums" in text and "v1" in text


def test_past_the_budget_the_grid_shows_poster_frames_and_says_so(store):
    root, segments = store
    table = grid_table(segments)
    one_clip = (
        explore.segment_preview(root, segments["video_path"][0], segments["audio_path"][0]).stat().st_size
    )
    budget = explore.EmbedBudget(2.5 * one_clip * 4 / 3 / 1e6)  # room for two clips
    page = grids.neighbour_grid(table, root, budget)
    tiles = re.findall(r"<video |<img ", page)
    assert tiles[:2] == ["<video ", "<video "] and set(tiles[2:]) == {"<img "} and len(tiles) == len(table)
    assert f"{len(table) - 2} of {len(table)} tiles show a poster frame" in page and "embed_budget_mb" in page
    assert budget.exhausted
    again = grids.neighbour_grid(table, root, budget)  # a spent budget stays spent
    assert not players(again) and "poster frame" in again


def test_a_tile_may_come_from_another_store(store, tmp_path):
    root, segments = store
    query = make_segment(tmp_path, "query", 440.0)
    table = grid_table(segments, seeds=1, k=1)
    table.loc[0, ["video_id", "video_path", "audio_path"]] = [
        query["video_id"],
        query["video_path"],
        query["audio_path"],
    ]
    table["store"] = [str(tmp_path), str(root)]
    page = grids.neighbour_grid(table, root, explore.EmbedBudget(100))
    assert len(players(page)) == 2 and (tmp_path / "previews" / query["video_path"]).exists()


def test_reel_tiles_the_clips_with_the_seed_audio(store, tmp_path):
    root, segments = store
    clips = [
        explore.segment_preview(root, v, a)
        for v, a in zip(segments["video_path"], segments["audio_path"], strict=True)
    ]
    reel = grids.neighbour_reel(
        clips[1:] + clips[:1], tmp_path / "reel.mp4", labels=["seed", "n1", "n2", "n3"]
    )
    facts = probe(reel)
    assert facts["size"] == (640, 360) and facts["vcodec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert facts["duration"] == pytest.approx(5.0, abs=0.15)
    assert dominant_hz(reel) == pytest.approx(1000, abs=3)  # the seed's (clips[1]) tone, not the others'
    with av.open(str(reel)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    # bottom-right tile is clips[0] (grey 20), top-left below its label is the seed (grey 60)
    assert frame[300:350, 400:600].mean() == pytest.approx(20, abs=6)
    assert frame[60:170, 20:300].mean() == pytest.approx(60, abs=6)


def test_reels_of_a_table_are_cached_by_their_content(store, tmp_path):
    root, segments = store
    table = grid_table(segments, seeds=2, k=1)
    first = grids.neighbour_reels(table, root, tmp_path, rows=[0, 1])
    assert len(set(first)) == 2 and all(p.exists() for p in first)
    stamp = first[0].stat().st_mtime_ns
    assert grids.neighbour_reels(table, root, tmp_path, rows=[0])[0].stat().st_mtime_ns == stamp
    other = table.copy()
    other.loc[other["rank"] == 1, "similarity"] = 0.5  # other labels: another reel
    assert grids.neighbour_reels(other, root, tmp_path, rows=[0])[0] != first[0]
