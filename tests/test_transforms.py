"""EDGE's RandomResizedCrop(scale 0.5-2.0) + flip, batched and seeded (oodflow.transforms)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from oodflow import training
from oodflow.multilabel import ML_BENCHMARKS
from oodflow.transforms import ATTEMPTS, crop_boxes, random_resized_crop, resized_crops

torch.set_num_threads(2)


def test_crop_boxes_fit_the_image_with_torchvisions_area_and_ratio_ranges():
    side, n = 256, 20000
    top, left, h, w = crop_boxes(n, side, side, torch.Generator().manual_seed(0)).T
    assert ((top >= 0) & (left >= 0) & (top + h <= side) & (left + w <= side)).all()
    full = (h == side) & (w == side)
    area, aspect = (h * w)[~full].double() / side**2, (w / h)[~full].double()
    # a kept draw holds 50-100 % of the area (fractions above 1 never fit), ratio in [3/4, 4/3]
    assert area.min() >= 0.5 - 0.01 and area.max() <= 1.0
    assert aspect.min() >= 0.75 - 0.01 and aspect.max() <= 4 / 3 + 0.01
    # fallback rate: a draw fits a square when s <= exp(-|log r|), |log r| ~ U(0, log 4/3) and
    # s ~ U(0.5, 2): p = (E[exp(-t)] - 0.5) / 1.5 with E[exp(-t)] = (1 - 3/4) / log(4/3); all
    # ATTEMPTS draws miss with probability (1 - p)^ATTEMPTS and the whole image is used
    p = ((1 - 0.75) / math.log(4 / 3) - 0.5) / 1.5
    expected = (1 - p) ** ATTEMPTS
    sigma = math.sqrt(expected * (1 - expected) / n)
    assert abs(full.double().mean().item() - expected) < 4 * sigma
    assert ((top == 0) & (left == 0))[full].all()  # the fallback is centred (the whole square)


def test_crop_boxes_fallback_of_a_wide_image_is_the_central_crop_at_ratio_4_3():
    # scale (3, 4): no draw can fit, every box is the fallback
    boxes = crop_boxes(5, 30, 100, torch.Generator().manual_seed(0), scale=(3.0, 4.0))
    assert boxes.tolist() == [[0, 30, 30, 40]] * 5  # w = round(30 * 4/3), centred: (100 - 40) // 2


def test_resized_crops_equal_crop_then_bilinear_resize_and_flip():
    x = torch.randn(5, 3, 20, 20)
    boxes = torch.tensor([[0, 0, 20, 20], [2, 3, 10, 10], [5, 0, 15, 11], [0, 9, 17, 11], [4, 4, 12, 16]])
    flip = torch.tensor([False, True, False, True, True])
    out = resized_crops(x, boxes, flip)
    assert out.shape == x.shape and out.dtype == x.dtype
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        crop = x[i : i + 1, :, top : top + h, left : left + w]
        ref = F.interpolate(crop, (20, 20), mode="bilinear", align_corners=False)
        ref = ref.flip(-1) if flip[i] else ref
        torch.testing.assert_close(out[i : i + 1], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0], x[0], atol=1e-5, rtol=0)  # whole image, no flip: identity


def test_random_resized_crop_is_seeded_keeps_constants_and_flips_half():
    x = torch.randn(64, 3, 32, 32)
    a = random_resized_crop(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, random_resized_crop(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(a, random_resized_crop(x, torch.Generator().manual_seed(1)))
    const = torch.full((8, 3, 32, 32), 0.7)
    torch.testing.assert_close(random_resized_crop(const, torch.Generator()), const)
    # an image whose columns count up: a flipped one counts down (the crop keeps the order)
    ramp = torch.arange(32.0).expand(400, 1, 32, 32).contiguous()
    out = random_resized_crop(ramp, torch.Generator().manual_seed(2))
    d = out[:, 0, 16].diff(dim=-1)
    up, down = (d >= 0).all(-1), (d <= 0).all(-1)
    assert (up ^ down).all() and 0.4 < down.double().mean() < 0.6
    # the flips come from the same generator after the boxes: re-derive them
    g = torch.Generator().manual_seed(2)
    crop_boxes(400, 32, 32, g)
    assert torch.equal(down, torch.rand(400, generator=g) < 0.5)


def test_edge_policy_is_the_paper_benchmarks_and_the_embedded_keeps_shifts():
    x = torch.randn(16, 3, 64, 64)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(training.augment(x, "resized_crop_flip", g1), random_resized_crop(x, g2))
    for name in ("voc2012", "coco2014", "nuswide"):
        assert ML_BENCHMARKS.get(name).augment == "resized_crop_flip"
    assert ML_BENCHMARKS.get("mnist5k-ml").augment == "shift"
    with pytest.raises(ValueError, match="valid: shift, crop_flip, resized_crop_flip"):
        training.augment(x, "rrc", g1)
