"""Tests for iqa_bench.stats.jnd: VOC AP, JND AP/mAP, parity with (and a bug in) LPIPS."""

from __future__ import annotations

import numpy as np
import pytest

from iqa_bench.stats import jnd_ap, jnd_map, voc_ap


def _ap_by_hand(d: list[float], same: list[float]) -> float:
    """Independent loop implementation: rank by distance (ties by input order), then sum
    recall steps times the best precision at that recall or beyond."""
    order = sorted(range(len(d)), key=lambda i: (d[i], i))
    total = sum(same)
    tp = fp = 0.0
    points = []
    for i in order:
        tp += same[i]
        fp += 1.0 - same[i]
        points.append((tp / total, tp / (tp + fp)))
    ap, previous_recall = 0.0, 0.0
    for k, (recall, _) in enumerate(points):
        ap += (recall - previous_recall) * max(p for _, p in points[k:])
        previous_recall = recall
    return ap


def test_voc_ap_hand_computed_case() -> None:
    # Envelope [1, 2/3, 2/3]: recall 0 -> 0.5 at precision 1, 0.5 -> 1 at precision 2/3.
    assert voc_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(5 / 6)


def test_voc_ap_is_continuous_not_eleven_point() -> None:
    # Continuous: 0.5 * 1 + 0.5 * 0.5 = 0.75; the 11-point method would give 8.5 / 11.
    assert voc_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75)


def test_voc_ap_uses_precision_envelope_from_the_right() -> None:
    # The dip to 0.5 at recall 0.5 is lifted to the later 0.75.
    assert voc_ap([0.25, 0.5, 1.0], [1.0, 0.5, 0.75]) == pytest.approx(0.25 + 0.75 * 0.75)


def test_voc_ap_rejects_decreasing_recall() -> None:
    with pytest.raises(ValueError, match=r"recall decreases at index 1 \(0.5 -> 0.25\)"):
        voc_ap([0.5, 0.25], [1.0, 1.0])


def test_voc_ap_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"recall=2, precision=1"):
        voc_ap([0.5, 1.0], [1.0])


def test_jnd_ap_hand_computed_case() -> None:
    # Sorted same = [1, 0, 1, 0.5]: TP = [1, 1, 2, 2.5], FP = [0, 1, 1, 1.5], total = 2.5.
    # recall = [0.4, 0.4, 0.8, 1], precision = [1, 0.5, 2/3, 0.625];
    # AP = 0.4 * 1 + 0.4 * 2/3 + 0.2 * 0.625.
    d = [0.4, 0.1, 0.3, 0.2]
    same = [0.5, 1.0, 1.0, 0.0]
    assert jnd_ap(d, same) == pytest.approx(0.4 + 0.4 * 2 / 3 + 0.2 * 0.625)


def test_jnd_ap_perfect_ranking_scores_one() -> None:
    assert jnd_ap([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert jnd_ap([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) < 0.6


def test_jnd_ap_flattens_nchw_shaped_distances() -> None:
    d = np.array([0.4, 0.1, 0.3, 0.2])
    same = [0.5, 1.0, 1.0, 0.0]
    assert jnd_ap(d.reshape(4, 1, 1, 1), same) == jnd_ap(d, same)


def test_jnd_ap_breaks_ties_by_input_order() -> None:
    assert jnd_ap([0.1, 0.1], [0.0, 1.0]) == pytest.approx(0.5)
    assert jnd_ap([0.1, 0.1], [1.0, 0.0]) == pytest.approx(1.0)


def test_jnd_ap_matches_independent_loop_implementation() -> None:
    rng = np.random.default_rng(11)
    d = rng.random(60)
    same = rng.integers(0, 4, 60) / 3.0
    assert jnd_ap(d, same) == pytest.approx(_ap_by_hand(d.tolist(), same.tolist()), abs=1e-12)


def test_jnd_ap_rejects_no_same_judgments() -> None:
    with pytest.raises(ValueError, match=r"same sums to 0: no pair was judged 'same'"):
        jnd_ap([0.1, 0.2], [0.0, 0.0])


def test_jnd_ap_rejects_nan_distance() -> None:
    with pytest.raises(ValueError, match=r"d has 1 NaN value\(s\)"):
        jnd_ap([0.1, np.nan], [1.0, 0.0])


def test_jnd_map_is_plain_mean_of_subset_aps() -> None:
    d = [0.1, 0.2, 0.1, 0.2, 0.3, 0.4]
    same = [1, 0, 0, 1, 0, 0]
    res = jnd_map(d, same, ["a", "a", "b", "b", "b", "b"])
    assert res.scores == pytest.approx({"a": 1.0, "b": 0.5})
    assert res.n == {"a": 2, "b": 4}
    assert res.mean == pytest.approx(0.75)
    assert res.pooled == pytest.approx(jnd_ap(d, same))


def test_jnd_map_names_subset_without_same_judgments() -> None:
    with pytest.raises(ValueError, match=r"same sums to 0 in subset 'b'"):
        jnd_map([0.1, 0.2, 0.3], [1, 0, 0], ["a", "a", "b"])


# ---------------------------------------------------------------------------
# Parity with the reference implementation (lpips.trainer.score_jnd_dataset).
# ---------------------------------------------------------------------------


class _FakeLoader:
    """Stands in for lpips' data loader: ``load_data()`` yields batches of tensors."""

    def __init__(self, batches: list[dict]) -> None:
        self._batches = batches

    def load_data(self) -> list[dict]:
        return self._batches


def _reference_jnd(d: np.ndarray, same: np.ndarray, distance_shape: tuple[int, ...]) -> float:
    """Runs lpips' score_jnd_dataset on a fake loader whose func returns ``d`` per batch."""
    torch = pytest.importorskip("torch")
    trainer = pytest.importorskip("lpips.trainer")
    batches = []
    for start in range(0, len(d), 8):
        idx = torch.arange(start, min(len(d), start + 8), dtype=torch.float64)
        batches.append(
            {
                "p0": idx.view(-1, 1, 1, 1),  # the patch carries its sample index
                "p1": torch.zeros(len(idx), 1, 1, 1, dtype=torch.float64),
                "same": torch.from_numpy(same[start : start + 8]).view(-1, 1, 1, 1),
            }
        )

    def func(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        rows = d[p0.flatten().long().numpy()]
        return torch.from_numpy(rows).view(len(rows), *distance_shape)

    score, _ = trainer.score_jnd_dataset(_FakeLoader(batches), func)
    return float(score)


def _jnd_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    d = rng.random(37)  # distinct values, so the reference's unstable sort cannot matter
    same = rng.integers(0, 4, 37) / 3.0
    same[0] = 1.0 / 3.0  # the value the buggy reference returns; far from the true AP
    return d, same


def test_jnd_ap_matches_lpips_reference_with_flat_distances() -> None:
    d, same = _jnd_data()
    assert jnd_ap(d, same) == pytest.approx(_reference_jnd(d, same, ()), abs=1e-9)


def test_lpips_reference_jnd_is_wrong_for_nchw_distances_but_jnd_ap_is_not() -> None:
    """The reference collapses to ``same[0]`` when func returns (B, 1, 1, 1) distances.

    ``score_jnd_dataset`` does ``ds += func(...).numpy().tolist()`` without flattening (unlike
    the 2AFC scorer), so each distance becomes a nested list ``[[[d]]]`` and ``np.array(ds)``
    has shape (N, 1, 1, 1). ``np.argsort`` then sorts along the *last* axis, of length 1, and
    returns all zeros; ``sames[sorted_inds]`` therefore repeats ``sames[0]`` N times. Precision
    is the constant ``same[0]`` and recall climbs evenly to 1, so the "AP" is ``same[0]``
    whatever the distances are. ``lpips.LPIPS`` returns (N, 1, 1, 1) by default, so passing a
    model straight in as ``func`` hits this; ``jnd_ap`` flattens its input first.
    """
    d, same = _jnd_data()
    correct = _ap_by_hand(d.tolist(), same.tolist())
    buggy = _reference_jnd(d, same, (1, 1, 1))
    assert buggy == pytest.approx(same[0], abs=1e-12)
    assert abs(buggy - correct) > 0.1
    assert jnd_ap(d.reshape(-1, 1, 1, 1), same) == pytest.approx(correct, abs=1e-12)
