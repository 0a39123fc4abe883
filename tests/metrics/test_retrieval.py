"""Retrieval metrics against a slow reference, analytic cases and invariances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.metrics import (
    argsort_diagonal_rank,
    is_collapsed,
    main_form,
    main_form_queries,
    median_pair_distance,
    median_rank,
    paper_form,
    recall_at_k,
    retrieval_counts,
    retrieval_ranks,
)


def reference_ranks(queries, gallery, targets, groups):
    """Mid-ranks by loops: 1 + (competitors more similar) + (competitors equally similar) / 2."""

    def cos(x, y):
        return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))

    ranks = []
    for i, query in enumerate(queries):
        t = targets[i]
        match = cos(query, gallery[t])
        rank = 1.0
        for j, item in enumerate(gallery):
            if j == t or groups[j] == groups[t]:
                continue
            similarity = cos(query, item)
            rank += 1.0 if similarity > match else 0.5 if similarity == match else 0.0
        ranks.append(rank)
    return np.array(ranks)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 25),
    extra=st.integers(0, 10),
    dim=st.integers(1, 12),
    n_groups=st.integers(1, 40),
    seed=st.integers(0, 10_000),
)
def test_ranks_match_reference(n, extra, dim, n_groups, seed):
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(n, dim))
    gallery = rng.normal(size=(n + extra, dim))
    targets = rng.permutation(n + extra)[:n]
    groups = rng.integers(0, n_groups, size=n + extra)
    got = retrieval_ranks(queries, gallery, targets, groups)
    np.testing.assert_array_equal(got, reference_ranks(queries, gallery, targets, groups))
    ungrouped = retrieval_ranks(queries, gallery, targets)
    np.testing.assert_array_equal(ungrouped, reference_ranks(queries, gallery, targets, np.arange(n + extra)))


def test_perfect_embeddings_rank_first():
    emb = np.random.default_rng(0).normal(size=(300, 16))
    assert np.all(retrieval_ranks(emb, emb) == 1)
    assert median_rank(emb, 2 * emb) == 1
    assert recall_at_k(emb, emb, 1) == 1


def test_random_embeddings_rank_at_chance():
    """The sample median of n uniform ranks over 1..N has sd ≈ N / (2√n); allow 4 of them."""
    rng = np.random.default_rng(1)
    n = 1001
    got = median_rank(rng.normal(size=(n, 32)), rng.normal(size=(n, 32)))
    assert abs(got - (n + 1) / 2) <= 4 * n / (2 * np.sqrt(n))


@pytest.mark.parametrize("collapsed", [np.ones((50, 8)), np.zeros((50, 8)), np.full((50, 8), 0.73)])
def test_collapsed_embeddings_score_chance_exactly(collapsed):
    n = len(collapsed)
    np.testing.assert_array_equal(retrieval_ranks(collapsed, collapsed), np.full(n, (n + 1) / 2))
    assert recall_at_k(collapsed, collapsed, 5) == pytest.approx(5 / n)


def test_directions_differ_on_an_asymmetric_example():
    """Worked by hand: cosines 1, √½ and 0 between unit axes and their diagonal."""
    audio = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    video = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(retrieval_ranks(audio, video), [1.0, 2.0, 2.5])
    np.testing.assert_array_equal(retrieval_ranks(video, audio), [1.0, 2.5, 2.0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 30), seed=st.integers(0, 10_000))
def test_invariant_to_gallery_permutation(n, seed):
    rng = np.random.default_rng(seed)
    queries, gallery = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    groups = rng.integers(0, 4, size=n)
    perm = rng.permutation(n)
    moved_to = np.argsort(perm)  # gallery[i] sits at position moved_to[i] of gallery[perm]
    before = retrieval_ranks(queries, gallery, groups=groups)
    after = retrieval_ranks(queries, gallery[perm], targets=moved_to, groups=groups[perm])
    np.testing.assert_array_equal(before, after)


def test_recall_counts_ties_as_shared_chances():
    greater, ties, pool = retrieval_counts(np.ones((4, 2)), np.ones((4, 2)))
    assert greater.tolist() == [0] * 4 and ties.tolist() == [3] * 4 and pool.tolist() == [4] * 4
    assert recall_at_k(np.ones((4, 2)), np.ones((4, 2)), 2) == pytest.approx(0.5)


def test_recall_matches_reference_without_ties():
    rng = np.random.default_rng(2)
    queries, gallery = rng.normal(size=(80, 6)), rng.normal(size=(80, 6))
    ranks = reference_ranks(queries, gallery, np.arange(80), np.arange(80))
    for k in (1, 5, 10):
        assert recall_at_k(queries, gallery, k) == pytest.approx(np.mean(ranks <= k))


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="dim"):
        retrieval_ranks(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="group label"):
        retrieval_ranks(np.ones((3, 2)), np.ones((3, 2)), groups=[1, 2])
    with pytest.raises(ValueError, match="empty"):
        main_form(np.ones((0, 2)), np.ones((0, 2)), [])


def video_level_corpus(n_videos, segments, dim=16, seed=0):
    """Segments of a video share one embedding, the same in both modalities."""
    rng = np.random.default_rng(seed)
    video_ids = np.repeat([f"v{i}" for i in range(n_videos)], segments)
    emb = np.repeat(rng.normal(size=(n_videos, dim)), segments, axis=0)
    return emb, video_ids


def test_main_form_leaves_out_the_querys_own_video():
    emb, video_ids = video_level_corpus(20, 3)
    result = main_form(emb, emb, video_ids)
    assert result["pool"] == 60 - 3 + 1 and result["chance"] == 29.5
    assert result["median_rank_a2v"] == result["median_rank_v2a"] == 1.0
    assert result["r1_a2v"] == result["r10_v2a"] == 1.0
    # Without leaving siblings out, the two identical siblings would tie with the match.
    assert median_rank(emb, emb) == 2.0


def test_main_form_queries_are_the_ranks_behind_the_summary():
    rng = np.random.default_rng(7)
    audio, video = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    video_ids = np.repeat(np.arange(10), 3)
    queries = main_form_queries(audio, video, video_ids)
    np.testing.assert_array_equal(queries["rank_a2v"], retrieval_ranks(audio, video, groups=video_ids))
    np.testing.assert_array_equal(queries["rank_v2a"], retrieval_ranks(video, audio, groups=video_ids))
    assert (queries["pool"] == 30 - 3 + 1).all()
    summary = main_form(audio, video, video_ids)
    assert (
        summary["median_rank_a2v"] == np.median(queries["rank_a2v"])
        and summary["r10_v2a"] == queries["r10_v2a"].mean()
    )


def test_main_form_states_pools_of_uneven_videos():
    rng = np.random.default_rng(3)
    video_ids = np.array(["a"] * 4 + ["b"] * 2 + ["c"] * 1)
    result = main_form(rng.normal(size=(7, 3)), rng.normal(size=(7, 3)), video_ids)
    # Pools per query: 4 for each of a, 6 for each of b, 7 for c; the median query sees 4.
    assert (result["pool_min"], result["pool"], result["pool_max"]) == (4, 4, 7)
    assert result["n_videos"] == 3 and result["n_segments"] == 7


def test_paper_form_pools_one_segment_per_video():
    emb, video_ids = video_level_corpus(150, 3)
    result = paper_form(emb, emb, video_ids)
    assert (result["n_pools"], result["pool"], result["chance"]) == (3, 150, 75.5)
    assert result["median_rank_a2v"] == result["median_rank_v2a"] == 1.0


def test_paper_form_at_chance_for_random_embeddings():
    rng = np.random.default_rng(4)
    video_ids = np.repeat(np.arange(1200), 2)
    result = paper_form(rng.normal(size=(2400, 16)), rng.normal(size=(2400, 16)), video_ids)
    assert result["pool"] == 1000 and result["n_pools"] == 2
    assert abs(result["median_rank_a2v"] - 500.5) <= 4 * 1000 / (2 * np.sqrt(2000))


def test_paper_form_needs_a_hundred_videos():
    emb, video_ids = video_level_corpus(99, 4)
    assert paper_form(emb, emb, video_ids) is None


def test_argsort_diagonal_rank_is_about_half_the_pool_even_for_perfect_embeddings():
    emb = np.random.default_rng(5).normal(size=(1000, 16))
    assert median_rank(emb, emb) == 1
    assert abs(argsort_diagonal_rank(emb, emb) - 500.5) <= 4 * 1000 / (2 * np.sqrt(1000))


# ---------------------------------------------------------------------------------------------
# Collapse and the bootstrap over videos
# ---------------------------------------------------------------------------------------------


def test_collapse_detection_on_constant_tied_and_healthy_embeddings():
    rng = np.random.default_rng(0)
    constant = np.tile(rng.normal(size=8), (40, 1))
    tied = np.repeat(rng.normal(size=(2, 8)), [39, 1], axis=0)  # all but one segment on one point
    saturated = 0.999 + 1e-7 * rng.normal(size=(40, 8))  # sigmoid outputs all at the top
    healthy = rng.normal(size=(40, 8))
    assert median_pair_distance(constant) < 1e-6 and is_collapsed(constant)
    assert is_collapsed(tied) and is_collapsed(saturated) and is_collapsed(np.zeros((10, 4)))
    assert not is_collapsed(healthy) and median_pair_distance(healthy) == pytest.approx(1, abs=0.15)
    # two clusters are not a collapse: half the pairs are far apart
    assert not is_collapsed(np.repeat(np.eye(2), 20, axis=0))


def test_collapse_samples_pairs_when_there_are_many():
    x = np.random.default_rng(1).normal(size=(3000, 4))
    assert median_pair_distance(x, max_pairs=5000) == pytest.approx(1, abs=0.1)
