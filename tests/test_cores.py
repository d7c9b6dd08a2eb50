"""CORES: closed-form pieces, stated invariants, the per-model response links, and an end-to-end check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from oodflow.metrics import auroc
from oodflow.models import MODELS, build_model
from oodflow.models.responses import conv_matrix, residual_link
from oodflow.scores import NETWORK_SCORES, build_score
from oodflow.scores.cores import CORES, backtrack, extreme_term, layer_score


def test_extreme_term_closed_form():
    e = torch.tensor([[2.0, -1.0, 0.5, 3.0]], dtype=torch.float64)
    # magnitude mean(relu(e - 1)) = (1 + 0 + 0 + 2) / 4; frequency mean(e > 1) = 2 / 4
    assert extreme_term(e, 1.0, 1.0, 1.0).item() == pytest.approx(0.75 * 0.5)
    assert extreme_term(e, 1.0, 2.0, 0.0).item() == pytest.approx(0.75**2)
    assert extreme_term(e, 10.0, 1.0, 1.0).item() == 0.0


def test_backtrack_follows_the_links():
    # 2 classes -> 4 channels -> 3 channels
    link0 = torch.tensor([[5.0, 1.0, 4.0, 0.0], [0.0, 9.0, 0.0, 8.0]], dtype=torch.float64)
    link1 = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 0.0, 7.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64
    )
    classes = torch.tensor([[0], [1]])
    idx0, idx1 = backtrack(classes, [link0, link1], keep=[2, 1])
    assert [sorted(r) for r in idx0.tolist()] == [[0, 2], [1, 3]]
    # class 0 keeps channels {0, 2}: relevance in the next layer = row0 + row2 = [1, 3, 0] -> channel 1
    # class 1 keeps channels {1, 3}: relevance = row1 + row3 = [0, 0, 7] -> channel 2
    assert idx1.tolist() == [[1], [2]]


def test_layer_score_is_monotone_in_selected_responses_and_ignores_the_rest():
    g = torch.Generator().manual_seed(0)
    maxima = torch.randn(5, 8, generator=g, dtype=torch.float64)
    minima = maxima - 2.0
    idx_max = torch.tensor([[0, 1, 2]] * 5)
    idx_min = torch.tensor([[3, 4]] * 5)
    base = layer_score(maxima, minima, idx_max, idx_min)
    # stronger selected responses never lower the score (and here raise it)
    louder = maxima.clone()
    louder[:, :3] = louder[:, :3].abs() * 3 + 1
    assert torch.all(layer_score(louder, minima, idx_max, idx_min) >= base)
    quieter_min = minima.clone()
    quieter_min[:, 3:5] -= 5.0  # more negative extremes on the min path
    assert torch.all(layer_score(maxima, quieter_min, idx_max, idx_min) > base)
    # channels 5..7 are selected by neither path: changing them changes nothing
    other_max, other_min = maxima.clone(), minima.clone()
    other_max[:, 5:] = 100.0
    other_min[:, 5:] = -100.0
    assert torch.equal(layer_score(other_max, other_min, idx_max, idx_min), base)
    assert torch.equal(layer_score(maxima, minima, idx_max, None), extreme_term(maxima[:, :3], 0.0, 1, 1))


def test_conv_matrix_is_the_response_to_a_constant_input():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    for i in range(3):
        x = torch.zeros(1, 3, 5, 5)
        x[0, i] = 1.0
        centre = conv(x)[0, :, 2, 2] - conv.bias
        assert torch.allclose(conv_matrix(conv)[:, i], centre, atol=1e-6)
    dw = nn.Conv2d(4, 4, 3, groups=4, bias=False)
    assert torch.equal(conv_matrix(dw), torch.diag(dw.weight.sum(dim=(1, 2, 3))))


def test_residual_link_is_skip_plus_branch():
    a, b = nn.Conv2d(4, 4, 1, bias=False), nn.Conv2d(4, 4, 1, bias=False)
    expected = torch.eye(4) + b.weight[:, :, 0, 0] @ a.weight[:, :, 0, 0]
    assert torch.allclose(residual_link([a, b], None, 4), expected.detach())


# resnet50 (torchvision, the multi-label paper configs) defines no CORES response layers
@pytest.mark.parametrize("name", [n for n in MODELS.names() if n != "resnet50"])
def test_every_model_has_consistent_response_layers(name):
    kwargs = {"width": 0.25} if name != "small_cnn" else {}
    model = build_model(name, num_classes=7, in_channels=3, **kwargs).eval()
    layers = model.response_layers()
    assert layers[0].link.shape[0] == 7
    for deeper, shallower in zip(layers, layers[1:]):
        assert shallower.link.shape[0] == deeper.channels
    seen = {}
    handles = [
        layer.module.register_forward_hook(lambda m, i, o, n=layer.name: seen.__setitem__(n, o.shape))
        for layer in layers
    ]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for h in handles:
        h.remove()
    for layer in layers:
        assert seen[layer.name][1] == layer.channels, layer.name
    # links are built where the weights live (a CPU-made identity broke them on CUDA once)
    assert all(layer.link.device.type == "meta" for layer in model.to("meta").response_layers())


def test_score_is_per_sample_and_checks_its_parameters():
    assert "cores" in NETWORK_SCORES
    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=4, in_channels=1).eval()
    x = torch.randn(6, 1, 28, 28)
    score = build_score("cores")
    together = score.score_inputs(model, x)
    alone = torch.cat([score.score_inputs(model, x[i : i + 1]) for i in range(6)])
    assert together.dtype == torch.float64 and together.shape == (6,)
    assert torch.allclose(together, alone)
    with pytest.raises(ValueError, match="has 2 response layers"):
        build_score("cores", layers=3).score_inputs(model, x)
    with pytest.raises(ValueError, match="keep_ratio"):
        build_score("cores", keep_ratio=0)
    with pytest.raises(ValueError, match="combine"):
        build_score("cores", combine="max")


def test_model_without_response_layers_is_a_clear_error():
    class Plain(nn.Module):
        def forward(self, x):
            return x.flatten(1)

    with pytest.raises(TypeError, match="cores"):
        CORES().score_inputs(Plain(), torch.randn(2, 1, 4, 4))


def test_cores_separates_trained_id_data_from_noise():
    """A small CNN trained to tell bright-blob positions apart: ID images score above uniform noise."""
    g = torch.Generator().manual_seed(0)

    def blobs(n):
        y = torch.randint(0, 4, (n,), generator=g)
        x = 0.1 * torch.randn(n, 1, 16, 16, generator=g)
        for i, label in enumerate(y.tolist()):
            r, c = divmod(label, 2)
            x[i, 0, 2 + 8 * r : 6 + 8 * r, 2 + 8 * c : 6 + 8 * c] += 2.0
        return x, y

    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=4, in_channels=1, width=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        x, y = blobs(64)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x_id, _ = blobs(200)
    noise = torch.rand(200, 1, 16, 16, generator=g) * 2 - 1
    score = CORES()
    s_id, s_ood = score.score_inputs(model, x_id).numpy(), score.score_inputs(model, noise).numpy()
    assert auroc(s_id, s_ood) > 0.9


def _cores_oracle(
    model,
    x,
    top_classes=3,
    start="most_likely",
    combine="sum",
    layers=None,
    max_path="merged",
    min_relevance="most_positive",
    neg_threshold="below_minus_tau",
):
    """CORES re-derived from the description (module docstring; Tang et al. 2024) in numpy: the max
    path starts at the ``top_classes`` most likely classes, the min path at the least likely one; at
    each response layer, deepest first, the k most relevant channels under the link from the channels
    kept one layer deeper; the layer score RM+ RF+ + RM- RF- (tau+ = 0, tau- = 1); summed over layers.
    Alternatives (docs/cores.md): one channel set per top class with the max term averaged over them;
    the min path keeping the most negatively linked channels; minima significant below +tau-."""
    import numpy as np

    rls = model.response_layers()[: layers or None]
    seen = {}
    # clone: a later in-place ReLU would overwrite the response map
    handles = [
        rl.module.register_forward_hook(
            lambda m, i, o, name=rl.name: seen.__setitem__(name, o.detach().clone().numpy())
        )
        for rl in rls
    ]
    with torch.no_grad():
        logits = model.eval()(x).numpy()
    for h in handles:
        h.remove()
    total = []
    for n in range(len(x)):
        ranked = list(np.argsort(-logits[n], kind="stable"))
        top = ranked[:top_classes] if start == "most_likely" else ranked[-top_classes:]
        max_sels = [set(top)] if max_path == "merged" else [{c} for c in top]
        min_sel = {int(np.argmin(logits[n]))}
        min_sign = 1.0 if min_relevance == "most_positive" else -1.0
        per_layer = []
        for rl in rls:
            link = rl.link.double().numpy()
            k = max(1, round(0.125 * link.shape[1]))
            max_sels = [set(np.argsort(-link[sorted(sel)].sum(0), kind="stable")[:k]) for sel in max_sels]
            min_sel = set(np.argsort(-min_sign * link[sorted(min_sel)].sum(0), kind="stable")[:k])
            resp = seen[rl.name][n].astype(np.float64)
            maxima, minima = resp.max(axis=(1, 2)), resp.min(axis=(1, 2))
            max_term = np.mean(
                [
                    np.maximum(maxima[sorted(sel)], 0).mean() * (maxima[sorted(sel)] > 0).mean()
                    for sel in max_sels
                ]
            )
            m = minima[sorted(min_sel)]
            # significant minima: m < -1 (magnitude -m - 1), or with below_tau m < 1 (magnitude 1 - m)
            depth = -m - 1 if neg_threshold == "below_minus_tau" else 1 - m
            per_layer.append(max_term + np.maximum(depth, 0).mean() * (depth > 0).mean())
        total.append(sum(per_layer) if combine == "sum" else float(np.prod(per_layer)))
    return np.array(total)


def test_cores_defaults_equal_the_description_and_each_choice_matters():
    """Defaults top_classes = 3, all response layers, sum; the max path from the most likely classes.
    Each alternative (least likely start, top-1, product, deepest layer only) gives other scores here,
    so a change of any of them is caught."""
    import numpy as np

    score = CORES()
    assert (score.top_classes, score.layers, score.combine, score.use_min) == (3, None, "sum", True)
    torch.manual_seed(2)
    model = build_model("small_cnn", num_classes=10, in_channels=1).eval()
    x = torch.randn(12, 1, 28, 28)
    assert len(model.response_layers()) == 2
    expected = _cores_oracle(model, x)
    np.testing.assert_allclose(score.score_inputs(model, x).numpy(), expected, rtol=1e-9, atol=1e-12)
    for variant in (
        {"start": "least_likely"},
        {"top_classes": 1},
        {"combine": "product"},
        {"layers": 1},
    ):
        other = _cores_oracle(model, x, **variant)
        assert np.abs(other - expected).max() > 1e-3 * np.abs(expected).max(), variant
    # the parameters reach the computation (the oracle's variants are CORES's own options)
    for params, variant in (
        ({"top_classes": 1}, {"top_classes": 1}),
        ({"combine": "product"}, {"combine": "product"}),
        ({"layers": 1}, {"layers": 1}),
    ):
        np.testing.assert_allclose(
            CORES(**params).score_inputs(model, x).numpy(),
            _cores_oracle(model, x, **variant),
            rtol=1e-9,
            atol=1e-12,
        )


def test_cores_alternative_readings_are_parameters_and_match_the_re_derivation():
    """The three choices where the unofficial sketch departs (docs/cores.md): each alternative equals the
    re-derivation with that reading, and differs from the default on this model (so each is live)."""
    import numpy as np

    torch.manual_seed(2)
    model = build_model("small_cnn", num_classes=10, in_channels=1).eval()
    x = torch.randn(12, 1, 28, 28)
    default = _cores_oracle(model, x)
    for params in (
        {"max_path": "per_class"},
        {"min_relevance": "most_negative"},
        {"neg_threshold": "below_tau"},
        {"max_path": "per_class", "min_relevance": "most_negative", "neg_threshold": "below_tau"},
    ):
        expected = _cores_oracle(model, x, **params)
        np.testing.assert_allclose(
            CORES(**params).score_inputs(model, x).numpy(), expected, rtol=1e-9, atol=1e-12
        )
        assert np.abs(expected - default).max() > 1e-3 * np.abs(default).max(), params
    # per_class with a single top class is the merged path
    np.testing.assert_array_equal(
        CORES(top_classes=1, max_path="per_class").score_inputs(model, x).numpy(),
        CORES(top_classes=1).score_inputs(model, x).numpy(),
    )
    for key in ("max_path", "min_relevance", "neg_threshold"):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            CORES(**{key: "nope"})


def test_backtrack_most_negative_keeps_the_smallest_relevance():
    link0 = torch.tensor([[5.0, -1.0, 4.0, -3.0]], dtype=torch.float64)
    (idx,) = backtrack(torch.tensor([[0]]), [link0], keep=[2], largest=False)
    assert sorted(idx[0].tolist()) == [1, 3]
    (idx,) = backtrack(torch.tensor([[0]]), [link0], keep=[2])
    assert sorted(idx[0].tolist()) == [0, 2]


def test_below_tau_counts_minima_under_plus_tau():
    maxima = torch.zeros(1, 3, dtype=torch.float64) - 5.0  # no significant maxima
    minima = torch.tensor([[0.5, -0.5, -2.0]], dtype=torch.float64)
    idx_max, idx_min = torch.tensor([[0]]), torch.tensor([[0, 1, 2]])
    # below -1: only -2 counts, depth 1; magnitude mean 1/3, frequency 1/3
    assert layer_score(maxima, minima, idx_max, idx_min).item() == pytest.approx(1 / 9)
    # below +1: all three count, depths 0.5, 1.5, 3; magnitude 5/3, frequency 1
    got = layer_score(maxima, minima, idx_max, idx_min, neg_threshold="below_tau").item()
    assert got == pytest.approx(5 / 3)
