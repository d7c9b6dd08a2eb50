"""Tests for the model registry and the OODNet contract of every registered model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oodflow.models import MODELS, build_model
from oodflow.models.base import OODNet

torch.set_num_threads(2)

SRC = Path(__file__).resolve().parents[1] / "src"
FORMATS = [(1, 28), (3, 32)]  # (in_channels, side)
SMALL = {"small_cnn": 1.0}  # width used in the per-model tests; 0.25 for everything else
NUM_CLASSES = 7


def _small(name: str, in_channels: int, **kwargs: object) -> OODNet:
    return build_model(name, NUM_CLASSES, in_channels, width=SMALL.get(name, 0.25), **kwargs)


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("in_channels,side", FORMATS)
@pytest.mark.parametrize("name", MODELS.names())
def test_contract(name: str, in_channels: int, side: int) -> None:
    torch.manual_seed(0)
    model = _small(name, in_channels).eval()
    assert isinstance(model, OODNet)
    assert isinstance(model.head, torch.nn.Linear)
    x = torch.randn(2, in_channels, side, side)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        assert logits.shape == (2, NUM_CLASSES)
        assert feats.shape == (2, model.feature_dim)
        assert model.feature_dim == model.head.in_features
        assert torch.allclose(model.head(feats), logits)
    model.train()
    assert model(x).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", MODELS.names())
def test_same_seed_same_weights(name: str) -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(123)
        states.append(_small(name, 3).state_dict())
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    torch.manual_seed(124)
    other = _small(name, 3).state_dict()
    assert not torch.equal(other["head.weight"], states[0]["head.weight"])


def test_unknown_model_lists_names() -> None:
    with pytest.raises(KeyError) as err:
        build_model("no_such_net", 10, 3)
    message = str(err.value)
    assert "no_such_net" in message
    for name in MODELS.names():
        assert name in message


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_bad_kwarg_names_model(name: str) -> None:
    with pytest.raises(TypeError, match=f"'{name}'.*bogus"):
        build_model(name, 10, 3, bogus=1)


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="width"):
        build_model("small_cnn", 10, 3, width=0.0)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("small_cnn", 0, 3)


def test_extra_kwargs_reach_factory() -> None:
    model = build_model("small_cnn", 10, 3, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.modules())


@pytest.mark.parametrize(
    "name,count,feature_dim",
    [
        ("resnet18", 11_173_962, 512),
        ("wrn40_2", 2_243_546, 128),
        ("small_cnn", 151_882, 128),
        ("mobilenet_v3_small", 1_528_106, 1024),
        ("mobilenet_v3_large", 4_214_842, 1280),
    ],
)
def test_param_counts(name: str, count: int, feature_dim: int) -> None:
    model = build_model(name, 10, 3)
    assert _n_params(model) == count
    assert model.feature_dim == feature_dim


def test_wide_resnet_generic() -> None:
    from oodflow.models.wrn import wide_resnet

    model = wide_resnet(16, 1, dropout=0.0, num_classes=3, in_channels=1)
    assert model.feature_dim == 64
    with pytest.raises(ValueError, match="depth"):
        wide_resnet(15, 1)


def test_import_does_not_import_torch() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = "import sys, oodflow.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


@pytest.mark.parametrize("size", [(7, 7), (8, 8), (5, 9), (4, 4)])
def test_grid_pool_equals_adaptive_average_pooling(size):
    from oodflow.models.small_cnn import GridPool

    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(GridPool(4)(x), torch.nn.AdaptiveAvgPool2d(4)(x))


#: Models with the (early, middle, late) feature blocks that DIAS's copycat needs.
FEATURE_BLOCK_MODELS = {"small_cnn", "resnet18", "resnet34", "wrn40_2"}


@pytest.mark.parametrize("name", MODELS.names())
def test_feature_blocks_compose_to_the_features_or_refuse_clearly(name: str) -> None:
    torch.manual_seed(0)
    model = _small(name, 3).eval()
    if name not in FEATURE_BLOCK_MODELS:
        with pytest.raises(NotImplementedError, match="feature blocks.*DIAS"):
            model.feature_blocks()
        return
    early, middle, late = model.feature_blocks()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        f1 = early(x)
        f2 = middle(f1)
        assert f1.ndim == f2.ndim == 4  # intermediate feature maps
        assert torch.equal(late(f2), model.features(x))
    own = {id(p) for p in model.parameters()}
    shared = [p for block in (early, middle, late) for p in block.parameters()]
    assert {id(p) for p in shared} == own - {id(p) for p in model.head.parameters()}  # no copies


#: The pooled trunk width of each model (the input of its first fully connected layer) at the
#: test widths: small_cnn c2 * 4 * 4 = 64 * 16; mobilenet's last conv; resnet50 2048 at any width.
BACKBONE_DIMS = {
    "small_cnn": 1024,
    "resnet18": 128,
    "resnet34": 128,
    "resnet50": 2048,
    "wrn40_2": 32,
    "mobilenet_v3_small": 144,
    "mobilenet_v3_large": 240,
}


@pytest.mark.parametrize("name", MODELS.names())
def test_backbone_features_are_the_input_of_the_first_linear_layer(name: str) -> None:
    """features == classifier_neck(backbone_features), and the neck holds every linear layer but the
    head: backbone_features is the representation before any fully connected layer."""
    assert set(BACKBONE_DIMS) == set(MODELS.names())
    torch.manual_seed(0)
    model = _small(name, 3).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        b = model.backbone_features(x)
        assert b.shape == (2, BACKBONE_DIMS[name])
        assert torch.allclose(model.classifier_neck(b), model.features(x), atol=1e-6)
    linears = {id(m) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    in_neck = {id(m) for m in model.classifier_neck.modules() if isinstance(m, torch.nn.Linear)}
    assert linears - in_neck == {id(model.head)}
    first = [m for m in model.classifier_neck.modules() if isinstance(m, torch.nn.Linear)]
    assert (first[0].in_features if first else model.head.in_features) == BACKBONE_DIMS[name]


def test_resnet50_backbone_features_are_2048_d_and_independent_of_the_neck_init() -> None:
    """EDGE's oe.py takes the SVD of the average-pooled ResNet-50 output (2048-d), not of the
    clssimp neck (Linear 2048->1000 + BN + ReLU): re-initialising the neck leaves them unchanged."""
    torch.manual_seed(0)
    model = _small("resnet50", 3).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before, feats = model.backbone_features(x), model.features(x)
        torch.manual_seed(1)
        model.neck[1].reset_parameters()
        assert torch.equal(model.backbone_features(x), before)
        assert not torch.allclose(model.features(x), feats)
        assert before.shape == (3, 2048) and feats.shape == (3, 1000)
        # the global average of the last stage's maps (avgpool is the backbone's last module)
        assert torch.allclose(before, model.backbone[:-1](x).mean(dim=(2, 3)), atol=1e-6)
