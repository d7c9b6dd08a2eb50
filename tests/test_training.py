"""Training: determinism, resumption after a kill, checkpoints carrying their config."""

from __future__ import annotations

import pytest
import torch

from oodflow import checkpoint, training
from oodflow.config import validate
from oodflow.io import FormatError


def _config(test_config, epochs=3):
    cfg = validate(test_config)
    run = dict(cfg["runs"]["tiny"], epochs=epochs, batch_size=16)
    return {"seed": 0, "benchmark": cfg["benchmark"], "run": run}


def _splits(n=48):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.arange(n) % 10
    x += y[:, None, None, None] * 0.3  # learnable signal
    return training.Split(x, y), training.Split(x[:16], y[:16])


def _train(config, tmp_path, name="ckpt.pt"):
    return training.train(
        config,
        *_splits(),
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / name,
        log=lambda m: None,
    )


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_is_deterministic(test_config, tmp_path):
    config = _config(test_config)
    m1, rows1 = _train(config, tmp_path, "a.pt")
    m2, rows2 = _train(config, tmp_path, "b.pt")
    assert _same_weights(m1, m2)
    assert rows1 == rows2
    assert [r["epoch"] for r in rows1] == [1, 2, 3]


def test_killed_run_resumes_to_identical_weights(test_config, tmp_path, monkeypatch):
    config = _config(test_config)
    reference, ref_rows = _train(config, tmp_path, "ref.pt")

    real_save = checkpoint.save

    def save_then_die(path, payload):
        real_save(path, payload)
        if payload["epoch"] == 1:  # killed right after the checkpoint of epoch 2
            raise KeyboardInterrupt

    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(config, tmp_path, "killed.pt")
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    assert checkpoint.load(tmp_path / "killed.pt")["epoch"] == 1

    messages = []
    resumed, rows = training.train(
        config,
        *_splits(),
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "killed.pt",
        log=messages.append,
    )
    assert any("resuming" in m for m in messages)
    assert _same_weights(reference, resumed)
    assert rows == ref_rows
    # and the final files are byte-identical (pickle memo of unpickled strings must not leak in)
    checkpoint.save(tmp_path / "a.pt", {"model": reference.state_dict(), "config": config, "log": ref_rows})
    checkpoint.save(tmp_path / "b.pt", {"model": resumed.state_dict(), "config": config, "log": rows})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_checkpoint_for_other_config_is_ignored(test_config, tmp_path):
    config = _config(test_config, epochs=1)
    _train(config, tmp_path, "c.pt")
    other = _config(test_config, epochs=2)
    messages = []
    _, rows = training.train(
        other,
        *_splits(),
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "c.pt",
        log=messages.append,
    )
    assert len(rows) == 2 and any("different config" in m for m in messages)


def test_checkpoint_load_is_safe_and_explicit(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError, match="bad.pt"):
        checkpoint.load(bad)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": Evil()}, evil)
    with pytest.raises(FormatError, match="evil.pt") as info:
        checkpoint.load(evil)
    msg = str(info.value)
    assert "refused" in msg and "would call print" in msg  # what was refused, and why
    assert "weights_only" not in msg and "trusted source" not in msg  # no advice to run the code
    assert "arbitrary code" not in msg and "safe_globals" not in msg
    with pytest.raises(ValueError, match="config"):
        checkpoint.save(tmp_path / "x.pt", {"model": {}})
    assert not (tmp_path / "x.pt").exists()


def test_random_shift_moves_content():
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    out = training.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 4.0)  # the blob stays fully inside
    assert not torch.equal(out, x.expand_as(out))


def test_crop_flip_augmentation_is_seeded_and_flips_some_images():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32).repeat(8, 1, 1, 1)
    a = training.augment(x, "crop_flip", torch.Generator().manual_seed(0))
    b = training.augment(x, "crop_flip", torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    unshifted = training.augment(x, "crop_flip", torch.Generator().manual_seed(1))
    row_order = unshifted[:, 0, 16, :]  # a mirrored row runs backwards wherever it is not padding
    diffs = row_order[:, 9:-9].diff(dim=1)
    assert (diffs > 0).all(dim=1).any() and (diffs < 0).all(dim=1).any()
    with pytest.raises(ValueError, match="valid: shift, crop_flip"):
        training.augment(x, "mixup", torch.Generator())


@pytest.mark.parametrize("side", [32, 64])
def test_crop_flip_pads_by_an_eighth_of_the_side(side):
    """A centred 2x2 blob lands anywhere within +-side/8 px of its place (4 px at 32, 8 at 64)."""
    x = torch.zeros(512, 1, side, side)
    c = side // 2
    x[:, :, c : c + 2, c : c + 2] = 1.0
    out = training.augment(x, "crop_flip", torch.Generator().manual_seed(0))
    assert torch.all(out.sum(dim=(1, 2, 3)) == 4.0)
    rows = out.sum(dim=(1, 3)).squeeze(1).argmax(dim=1) - c  # vertical offset (flips are horizontal)
    assert rows.min() == -(side // 8) and rows.max() == side // 8


@pytest.mark.parametrize("keep", [0, 10, 0.5, -30, -1])
def test_truncated_resume_checkpoint_restarts_training(test_config, tmp_path, keep):
    config = _config(test_config, epochs=2)
    reference, ref_rows = _train(config, tmp_path, "ref.pt")
    _train(_config(test_config, epochs=1), tmp_path, "cut.pt")  # some checkpoint, then cut short
    data = (tmp_path / "cut.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    messages = []
    model, rows = training.train(
        config,
        *_splits(),
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "cut.pt",
        log=messages.append,
    )
    assert rows == ref_rows and _same_weights(model, reference)  # restarted, as if never run
    note = next(m for m in messages if m.startswith("ignoring"))
    assert "cut.pt" in note and "truncated or unreadable" in note and "restarts from the first epoch" in note
    assert checkpoint.load(tmp_path / "cut.pt")["epoch"] == 1  # replaced by a whole one
