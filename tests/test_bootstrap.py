"""Bootstrap CIs: the weighted metrics equal the plain metrics of the explicitly resampled scores."""

from __future__ import annotations

import numpy as np
import pytest

from oodflow import bootstrap, metrics


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_metrics_equal_metrics_of_the_resamples(ties):
    rng = np.random.default_rng(0)
    id_s, ood_s = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 200)
    if ties:  # coarse scores: many ties within and across the two sets
        id_s, ood_s = np.round(id_s, 1), np.round(ood_s, 1)
    B = 25
    idx_id = rng.integers(0, id_s.size, (B, id_s.size))
    idx_ood = rng.integers(0, ood_s.size, (B, ood_s.size))
    w = np.stack([np.bincount(r, minlength=id_s.size) for r in idx_id])
    v = np.stack([np.bincount(r, minlength=ood_s.size) for r in idx_ood])
    auroc = bootstrap.weighted_auroc(id_s, ood_s, w, v)
    fpr = bootstrap.weighted_fpr_at_95_tpr(id_s, ood_s, w, v)
    for b in range(B):
        a, o = id_s[idx_id[b]], ood_s[idx_ood[b]]
        assert auroc[b] == pytest.approx(metrics.auroc(a, o), abs=1e-12)
        assert fpr[b] == pytest.approx(metrics.fpr_at_95_tpr(a, o), abs=1e-12)


def test_unit_weights_give_the_plain_metrics_and_draws_keep_sizes():
    rng = np.random.default_rng(1)
    id_s, ood_s = rng.normal(0.5, 1, 50), rng.normal(0, 1, 70)
    w, v = np.ones((1, 50)), np.ones((1, 70))
    assert bootstrap.weighted_auroc(id_s, ood_s, w, v)[0] == pytest.approx(metrics.auroc(id_s, ood_s))
    assert bootstrap.weighted_fpr_at_95_tpr(id_s, ood_s, w, v)[0] == pytest.approx(
        metrics.fpr_at_95_tpr(id_s, ood_s)
    )
    draws = bootstrap.draw_weights(50, 10, rng)
    assert draws.shape == (10, 50) and (draws.sum(axis=1) == 50).all()


def test_interval_covers_the_estimate_and_shrinks_with_more_data():
    rng = np.random.default_rng(2)
    widths = []
    for n in (100, 2000):
        id_s, ood_s = rng.normal(1, 1, n), rng.normal(0, 1, n)
        reps = bootstrap.bootstrap_metrics(id_s, ood_s, 300, np.random.default_rng(3))
        lo, hi = bootstrap.interval(reps["AUROC"])
        assert lo <= metrics.auroc(id_s, ood_s) <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n)
