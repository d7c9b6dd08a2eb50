"""Tests of oodflow.metrics: ID is positive, scores are "higher = ID", values are fractions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from oodflow.metrics import (
    accuracy,
    aupr_in,
    aupr_out,
    auroc,
    fpr_at_95_tpr,
    fpr_at_95_tpr_openood,
    ood_metrics,
)

METRICS = [auroc, aupr_in, aupr_out, fpr_at_95_tpr, fpr_at_95_tpr_openood, ood_metrics]


def tied_scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer-valued scores (many ties), ID shifted up, set sizes not multiples of 20."""
    rng = np.random.default_rng(seed)
    id_s = rng.integers(0, 12, size=int(rng.integers(30, 300))).astype(float) + 2
    ood_s = rng.integers(0, 12, size=int(rng.integers(30, 300))).astype(float)
    return id_s, ood_s


def brute_force_fpr(id_s: np.ndarray, ood_s: np.ndarray, level: float = 0.95) -> float:
    """The Hendrycks rule written threshold by threshold (independent of the implementation).

    Candidates: distinct scores t >= min(id_s) (the highest threshold with full recall and all
    above it). Pick the smallest |recall - level|; ties go to the lowest threshold.
    """
    best_t, best_gap = None, np.inf
    for t in np.unique(np.concatenate([id_s, ood_s])):  # ascending: first found = lowest t
        if t >= id_s.min():
            gap = abs(np.sum(id_s >= t) / id_s.size - level)
            if gap < best_gap:
                best_t, best_gap = t, gap
    return float(np.sum(ood_s >= best_t) / ood_s.size)


@pytest.mark.parametrize("seed", range(8))
def test_auroc_and_aupr_equal_sklearn_with_ties(seed):
    id_s, ood_s = tied_scores(seed)
    scores = np.r_[id_s, ood_s]
    is_id = np.r_[np.ones(id_s.size), np.zeros(ood_s.size)]
    assert auroc(id_s, ood_s) == pytest.approx(roc_auc_score(is_id, scores), abs=1e-12)
    assert aupr_in(id_s, ood_s) == pytest.approx(average_precision_score(is_id, scores), abs=1e-12)
    expected_out = average_precision_score(1 - is_id, -scores)
    assert aupr_out(id_s, ood_s) == pytest.approx(expected_out, abs=1e-12)
    # with ties the two AUPR directions really differ, so a swap would be caught
    assert abs(aupr_in(id_s, ood_s) - aupr_out(id_s, ood_s)) > 1e-3


@pytest.mark.parametrize("seed", range(20))
def test_fpr95_matches_threshold_by_threshold_rule(seed):
    id_s, ood_s = tied_scores(seed)
    assert fpr_at_95_tpr(id_s, ood_s) == brute_force_fpr(id_s, ood_s)


def test_fpr95_hand_example_argmin_rule_and_tie_break():
    # ID (15): 9 x10, 7 x4, 3 x1.  OOD (10): 9 x1, 7 x2, 5 x2, 3 x3, 1 x2.
    # Steps (accept score >= t):  t=9: TP 10, FP 1, recall 0.667
    #                             t=7: TP 14, FP 3, recall 0.933  |r - .95| = 0.0167
    #                             t=5: TP 14, FP 5, recall 0.933  |r - .95| = 0.0167
    #                             t=3: TP 15, FP 8, recall 1.0    |r - .95| = 0.05 (full recall)
    #                             t=1: dropped (below the first full-recall step)
    # argmin |r - .95| -> t=7 and t=5 tie; the reference's reversed argmin takes t=5: FPR 5/10.
    # ("first recall >= .95" would give 0.8; breaking the tie to t=7 would give 0.3.)
    id_s = np.r_[[9.0] * 10, [7.0] * 4, [3.0]]
    ood_s = np.r_[[9.0], [7.0] * 2, [5.0] * 2, [3.0] * 3, [1.0] * 2]
    assert fpr_at_95_tpr(id_s, ood_s) == 0.5


def test_fpr95_truncates_at_first_full_recall():
    # ID: 4 x10 -> recall 1 already at t=4 (FP 1). Lower thresholds t=3 (FP 3) and t=1 (FP 10)
    # also have recall 1 but are cut off, so FPR = 1/10 (without the cut it would be 1.0).
    id_s = np.full(10, 4.0)
    ood_s = np.r_[[4.0], [3.0] * 2, [1.0] * 7]
    assert fpr_at_95_tpr(id_s, ood_s) == pytest.approx(0.1)


def test_fpr95_exact_95_percent_point():
    # 20 ID: 19 at 5, 1 at 2 -> recall 0.95 exactly at t=5, where 1 of 10 OOD is accepted
    id_s = np.r_[[5.0] * 19, [2.0]]
    ood_s = np.r_[[5.0], [2.0] * 3, [1.0] * 6]
    assert fpr_at_95_tpr(id_s, ood_s) == pytest.approx(0.1)
    assert fpr_at_95_tpr(id_s, ood_s, recall=1.0) == pytest.approx(0.4)


def test_closed_form_perfect_and_reversed():
    good_id, good_ood = np.array([2.0, 3.0, 4.0, 5.0]), np.array([0.0, 1.0, 1.5])
    perfect = ood_metrics(good_id, good_ood)
    assert perfect == {"AUROC": 1.0, "AUPR-In": 1.0, "AUPR-Out": 1.0, "FPR@95": 0.0}
    assert fpr_at_95_tpr_openood(good_id, good_ood) == 0.0
    reversed_ = ood_metrics(good_ood, good_id)
    assert reversed_["AUROC"] == 0.0
    assert reversed_["FPR@95"] == 1.0
    assert fpr_at_95_tpr_openood(good_ood, good_id) == 1.0
    assert set(reversed_) == {"AUROC", "AUPR-In", "AUPR-Out", "FPR@95"}


def test_constant_scores_are_chance():
    m = ood_metrics(np.zeros(6), np.zeros(4))
    assert m["AUROC"] == 0.5
    assert m["AUPR-In"] == pytest.approx(0.6)  # AP = positive rate when all scores tie
    assert m["FPR@95"] == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_openood_fpr_matches_direct_roc_curve(seed):
    id_s, ood_s = tied_scores(seed)
    is_ood = np.r_[np.zeros(id_s.size), np.ones(ood_s.size)]
    fpr, tpr, _ = roc_curve(is_ood, -np.r_[id_s, ood_s])
    expected = fpr[np.flatnonzero(tpr >= 0.95)[0]]
    assert fpr_at_95_tpr_openood(id_s, ood_s) == pytest.approx(expected, abs=0)


def test_openood_fpr_is_the_role_swapped_quantity():
    # Without ties and with 100 OOD samples (95% reachable exactly) both rules pick the same
    # point, so OpenOOD's number equals ours with the roles of ID and OOD swapped and the score
    # negated -- and differs from ours on asymmetric data.
    rng = np.random.default_rng(7)
    id_s = rng.normal(1.0, 1.0, 237)
    ood_s = rng.normal(0.0, 2.0, 100)
    openood = fpr_at_95_tpr_openood(id_s, ood_s)
    assert openood == pytest.approx(fpr_at_95_tpr(-ood_s, -id_s), abs=0)
    assert abs(openood - fpr_at_95_tpr(id_s, ood_s)) > 0.05


@pytest.mark.parametrize("metric", METRICS, ids=lambda f: f.__name__)
def test_errors_name_the_input(metric):
    ok = np.array([0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="ood_scores contains 3 NaN values"):
        metric(ok, np.array([np.nan, 1.0, np.nan, np.nan]))
    with pytest.raises(ValueError, match="id_scores contains 1 NaN values"):
        metric(np.array([np.nan, 1.0]), ok)
    with pytest.raises(ValueError, match="id_scores is empty"):
        metric(np.array([]), ok)
    with pytest.raises(ValueError, match="ood_scores is empty"):
        metric(ok, [])
    with pytest.raises(ValueError, match="ood_scores contains 2 infinite values"):
        metric(ok, np.array([np.inf, -np.inf, 0.0]))
    with pytest.raises(ValueError, match="id_scores must be 1-D"):
        metric(ok[:, None], ok)


def test_fpr95_rejects_bad_recall():
    with pytest.raises(ValueError, match="recall"):
        fpr_at_95_tpr([1.0, 2.0], [0.0], recall=0.0)


def test_accuracy():
    labels = np.array([0, 2, 1, 1])
    logits = np.array([[3.0, 1, 0], [0, 1, 5], [0, 2, 1], [4, 0, 0]])
    assert accuracy(logits, labels) == 0.75
    assert accuracy(np.array([0, 2, 0, 0]), labels) == 0.5
    with pytest.raises(ValueError, match="3 predictions but 4 labels"):
        accuracy(logits[:3], labels)
    with pytest.raises(ValueError, match="labels is empty"):
        accuracy(logits[:0], labels[:0])
    with pytest.raises(ValueError, match="non-finite"):
        accuracy(np.full((4, 3), np.nan), labels)


def test_metrics_over_draws_average_the_subsets():
    from oodflow.metrics import draw_ood_subsets, ood_metrics, ood_metrics_over_draws

    rng = np.random.default_rng(3)
    id_s, ood_s = rng.normal(1.0, 1.0, 50), rng.normal(0.0, 1.0, 200)
    subsets = draw_ood_subsets(200, 10, 4, np.random.default_rng(0))
    assert subsets.shape == (4, 10) and all(len(set(row)) == 10 for row in subsets)
    assert np.array_equal(subsets, draw_ood_subsets(200, 10, 4, np.random.default_rng(0)))
    averaged = ood_metrics_over_draws(id_s, ood_s, subsets)
    for key, value in averaged.items():
        assert value == pytest.approx(np.mean([ood_metrics(id_s, ood_s[row])[key] for row in subsets]))
    assert averaged != ood_metrics(id_s, ood_s)
    with pytest.raises(ValueError, match="subset size"):
        draw_ood_subsets(5, 6, 1, rng)


def test_fpr_percentile_is_palms_rule_and_close_to_hendrycks():
    from oodflow.metrics import fpr_at_95_tpr_percentile

    rng = np.random.default_rng(5)
    id_s, ood_s = rng.normal(1.0, 1.0, 2001), rng.normal(0.0, 1.0, 1500)
    # PALM's cal_metric: mean(novel > np.percentile(known, 5)), re-derived with the order statistics:
    # the 5th percentile of 2001 values (linear rule) is the order statistic of rank 0.05 * 2000 = 100
    threshold = np.sort(id_s)[100]
    assert fpr_at_95_tpr_percentile(id_s, ood_s) == np.mean(ood_s > threshold)
    # strict ">": an OOD score equal to the threshold is not accepted (Hendrycks' rule accepts ">=")
    tied_ood = np.r_[ood_s, threshold]
    assert fpr_at_95_tpr_percentile(id_s, tied_ood) == np.sum(ood_s > threshold) / tied_ood.size
    # same operating point as Hendrycks' rule up to the OOD mass between neighbouring ID order stats
    assert abs(fpr_at_95_tpr_percentile(id_s, ood_s) - fpr_at_95_tpr(id_s, ood_s)) <= 3 / ood_s.size
    with pytest.raises(ValueError, match="recall"):
        fpr_at_95_tpr_percentile(id_s, ood_s, recall=0.0)
