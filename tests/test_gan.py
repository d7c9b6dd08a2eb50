"""GAN outliers: the sample-file checker, the DCGAN, its seeded training and sampling, the config."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml

from oodflow import gan, steps
from oodflow.config import ConfigError, validate
from oodflow.data.catalog import DATASETS, gan_dataset, gan_sigma
from oodflow.io import FormatError, save_npz

TINY_GAN = {"epochs": 2, "batch_size": 16, "lr": 0.0002, "latent_dim": 8, "width": 4}


def _pickled_npz(path, **arrays):
    """An npz whose arrays may be object arrays (np.savez pickles them), unlike save_npz."""
    np.savez(path, **arrays)


# ----------------------------------------------------------------------------------- format
def test_good_sample_file_loads(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    save_npz(tmp_path / "samples-2.0.npz", x=x, y=np.arange(5))
    np.testing.assert_array_equal(gan.load_gan_samples(tmp_path / "samples-2.0.npz"), x)
    save_npz(tmp_path / "x_only.npz", x=x)  # y is optional
    assert gan.load_gan_samples(tmp_path / "x_only.npz").shape == (5, 3, 32, 32)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 3, 32, 32), np.uint8)}, "missing array 'x'"),
        ({"x": np.zeros((2, 3, 32, 32), np.uint8), "z": np.zeros(2)}, "unexpected arrays z"),
        ({"x": np.zeros((2, 3, 32, 32), np.float32)}, "must be uint8"),
        ({"x": np.zeros((2, 3, 32, 32), np.int64)}, "must be uint8"),
        ({"x": np.zeros((2, 32, 32, 3), np.uint8)}, "(N, C, H, W)"),
        ({"x": np.zeros((2, 1, 28, 28), np.uint8)}, "(N, 3, 32, 32)"),
        ({"x": np.zeros((3, 32, 32), np.uint8)}, "(N, C, H, W)"),
        ({"x": np.zeros((0, 3, 32, 32), np.uint8)}, "N > 0"),
        ({"x": np.zeros((2, 3, 32, 32), np.uint8), "y": np.zeros(3, np.int64)}, "'y' must be 2 integers"),
    ],
)
def test_bad_sample_files_are_refused_naming_file_and_problem(tmp_path, arrays, message):
    path = tmp_path / "samples-2.0.npz"
    save_npz(path, **arrays)
    with pytest.raises(FormatError) as err:
        gan.load_gan_samples(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_pickled_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "samples-2.0.npz"
    obj = np.empty(2, dtype=object)
    obj[:] = [{"a": 1}, None]
    _pickled_npz(path, x=obj)
    with pytest.raises(FormatError, match="refuses to load safely"):
        gan.load_gan_samples(path)
    with np.load(path, allow_pickle=True) as data:  # the file really holds a pickled object array
        assert data["x"][0] == {"a": 1}


def test_not_an_npz_is_a_format_error(tmp_path):
    path = tmp_path / "samples-2.0.npz"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(FormatError) as err:  # numpy reads stray bytes as a pickle: refused, not run
        gan.load_gan_samples(path)
    assert str(path) in str(err.value)


def test_stored_form_round_trips():
    rgb = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    assert gan.stored_form(rgb).shape == (2, 4, 4, 3)
    assert gan.stored_form(rgb)[1, 2, 3, 0] == rgb[1, 0, 2, 3]
    np.testing.assert_array_equal(gan.channels_first(gan.stored_form(rgb)), rgb)
    grey = rgb[:, :1]
    assert gan.stored_form(grey).shape == (2, 4, 4)
    np.testing.assert_array_equal(gan.channels_first(gan.stored_form(grey)), grey)


def test_sigma_file_names():
    assert [gan.format_sigma(s) for s in (2, 2.0, 0, 0.1, 2.25)] == ["2.0", "2.0", "0.0", "0.1", "2.25"]
    with pytest.raises(ValueError):
        gan.format_sigma(-1)


# ----------------------------------------------------------------------------------- networks
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32), (3, 64)])
def test_dcgan_shapes_and_sigmoid_range(channels, size):
    torch.manual_seed(0)
    g = gan.build_generator(channels, size, latent_dim=8, width=4)
    d = gan.build_discriminator(channels, size, width=4)
    x = g(torch.randn(5, 8) * 10).detach()  # a wide latent still lands in [0, 1]
    assert x.shape == (5, channels, size, size)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert isinstance(g.net[-1], torch.nn.Sigmoid)
    assert d(x).shape == (5,)


def test_width_knob_scales_the_networks():
    def n(width):
        return sum(p.numel() for p in gan.build_generator(3, 32, 8, width).parameters())

    assert n(4) < n(8) < n(16)
    with pytest.raises(ValueError, match="side"):
        gan.build_generator(3, 30)


def _images(channels=1, size=28, n=40):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8)


def test_training_is_deterministic_and_learns_something(tmp_path):
    x = _images()
    g1, rows1 = gan.train_gan(x, TINY_GAN, seed=3, checkpoint_path=tmp_path / "a.pt", log=lambda m: None)
    g2, rows2 = gan.train_gan(x, TINY_GAN, seed=3, checkpoint_path=tmp_path / "b.pt", log=lambda m: None)
    g3, _ = gan.train_gan(x, TINY_GAN, seed=4, log=lambda m: None)
    assert rows1 == rows2 and len(rows1) == TINY_GAN["epochs"]
    for (k, a), b in zip(g1.state_dict().items(), g2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g3.state_dict().values()))
    init = gan.build_generator(1, 28, 8, 4)
    assert not torch.equal(next(iter(init.state_dict().values())), next(iter(g1.state_dict().values())))
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_resume_from_the_epoch_checkpoint_replays_the_same_weights(tmp_path):
    x = _images()
    full, _ = gan.train_gan(x, TINY_GAN, seed=3, log=lambda m: None)
    ckpt = tmp_path / "ckpt.pt"
    gan.train_gan(x, {**TINY_GAN, "epochs": 1}, seed=3, checkpoint_path=ckpt, log=lambda m: None)
    # the 1-epoch checkpoint is for another config; a 2-epoch run interrupted after epoch 1 is faked
    # by rewriting its config, exactly as train_gan stores it
    from oodflow import checkpoint

    state = checkpoint.load(ckpt)
    state["config"]["gan"]["epochs"] = 2
    checkpoint.save(ckpt, state)
    messages = []
    resumed, rows = gan.train_gan(x, TINY_GAN, seed=3, checkpoint_path=ckpt, log=messages.append)
    assert any("resuming" in m for m in messages) and len(rows) == 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------------- sampling
def test_sigma_zero_repeats_one_image_and_spread_grows_with_sigma():
    torch.manual_seed(0)
    g = gan.build_generator(3, 32, latent_dim=8, width=4).eval()
    with torch.no_grad():  # DCGAN's N(0, 0.02) init maps every z to ~grey 128; widen it to see spread
        for module in g.modules():
            if isinstance(module, torch.nn.ConvTranspose2d):
                module.weight.normal_(0.0, 0.3)
    zero = gan.sample(g, 7, 0.0, seed=0, batch_size=3)
    assert zero.dtype == np.uint8 and zero.shape == (7, 3, 32, 32)
    assert (zero == zero[:1]).all()
    with torch.inference_mode():
        expected = torch.round(g(torch.zeros(1, 8)) * 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(zero[0], expected[0])
    spread = [gan.sample(g, 64, s, seed=0).astype(float).std(axis=0).mean() for s in (0.0, 0.5, 2.0, 8.0)]
    assert spread[0] == 0.0 and spread[0] < spread[1] < spread[2] < spread[3]
    np.testing.assert_array_equal(gan.sample(g, 10, 2.0, seed=0), gan.sample(g, 10, 2.0, seed=0))
    assert not np.array_equal(gan.sample(g, 10, 2.0, seed=0), gan.sample(g, 10, 2.0, seed=1))


def test_step_functions_write_a_valid_sample_file_and_pool(tmp_path):
    from oodflow.data import embedded
    from oodflow.data.stored import load_set

    config = validate(
        {
            "device": "cpu",
            "benchmark": {"name": "mnist5k", "gan": {**TINY_GAN, "samples": 30}},
            "runs": {"r": {"model": "small_cnn", "method": "ce"}},
            "scores": {"msp": {}},
        }
    )
    x = _images(n=30)[:, 0]
    embedded.write_set(tmp_path / "train.npz", x, np.zeros(30, np.int64), name="train", sources=[], seed=0)
    steps.train_gan(config, str(tmp_path / "train.npz"), str(tmp_path / "g.pt"), str(tmp_path / "log.csv"),
                    str(tmp_path / "ckpt.pt"))  # fmt: skip
    assert not (tmp_path / "ckpt.pt").exists()
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == ",".join(gan.LOG_FIELDS)
    steps.sample_gan(config, str(tmp_path / "g.pt"), "1.5", str(tmp_path / "samples-1.5.npz"))
    samples = gan.load_gan_samples(tmp_path / "samples-1.5.npz", image_shape=(1, 28, 28))
    assert samples.shape == (30, 1, 28, 28)
    steps.gan_pool(config, "1.5", str(tmp_path / "pool.npz"), samples_npz=str(tmp_path / "samples-1.5.npz"))
    px, py = load_set(tmp_path / "pool.npz")
    np.testing.assert_array_equal(px, samples[:, 0])
    assert (py == -1).all()


@pytest.mark.parametrize(
    "bench, shape, expected",
    [("mnist5k", (3, 32, 32), (1, 28, 28)), ("mnist5k", (1, 32, 32), (1, 28, 28)),
     ("cifar10", (1, 28, 28), (3, 32, 32)), ("cifar10", (3, 64, 64), (3, 32, 32))],
)  # fmt: skip
def test_gan_samples_of_another_shape_fail_at_the_pool_step_naming_file_and_shapes(
    tmp_path, bench, shape, expected
):
    """Issue 23 item 5: samples that do not fit the benchmark stop at the pool step, not later."""
    config = {"seed": 0, "benchmark": {"name": bench}}
    path = tmp_path / "samples-1.5.npz"
    save_npz(path, x=np.zeros((4, *shape), np.uint8), y=np.full(4, -1, np.int64))
    with pytest.raises(FormatError) as info:
        steps.gan_pool(config, "1.5", str(tmp_path / "pool.npz"), samples_npz=str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and str(shape) in message and str(expected) in message
    assert f"benchmark '{bench}'" in message and not (tmp_path / "pool.npz").exists()


# ----------------------------------------------------------------------------------- config
def _config(**run_extra):
    cfg = {
        "benchmark": {"name": "mnist5k"},
        "runs": {
            "base": {"model": "small_cnn", "method": "ce"},
            "oe": {"model": "small_cnn", "method": "oe", **run_extra},
        },
        "scores": {"msp": {}},
    }
    return cfg


def test_outlier_config_is_validated():
    cfg = validate(_config(outliers={"source": "gan"}))
    assert cfg["runs"]["oe"]["outliers"] == {"source": "gan", "sigma": 2.0, "count": None}
    assert "outliers" not in cfg["runs"]["base"]
    bad = _config(outliers={"source": "gan"})
    bad["runs"]["base"]["outliers"] = {"source": "gan"}
    with pytest.raises(ConfigError, match=r"runs\.base\.outliers: method 'ce' trains on no outliers"):
        validate(bad)
    with pytest.raises(ConfigError, match=r"runs\.oe\.outliers\.count: a count applies to GAN"):
        validate(_config(outliers={"source": "aux", "count": 3}))
    with pytest.raises(ConfigError, match=r"runs\.oe\.outliers\.count: 6000 outliers of 5000"):
        validate(_config(outliers={"source": "gan", "count": 6000}))
    with pytest.raises(ConfigError, match=r"runs\.oe\.outliers\.source"):
        validate(_config(outliers={"source": "biggan"}))
    published = _config(outliers={"source": "gan"})
    published["benchmark"]["gan"] = {"source": "published"}
    with pytest.raises(ConfigError, match="published GAN samples are 32x32 RGB"):
        validate(published)


def test_published_gan_on_cifar_needs_a_published_sigma_and_is_a_catalog_dataset():
    cfg = _config(outliers={"source": "gan", "sigma": 2.5})
    cfg["benchmark"] = {
        "name": "cifar10",
        "image_format": "rgb32",
        "ood_sets": ["svhn"],
        "gan": {"source": "published"},
    }
    valid = validate(cfg)
    assert steps.gan_sigmas(valid) == ["2.5"]
    assert "cifar100_gan_2_5" in steps.catalog_datasets(valid)
    assert "tinyimages_300k" not in steps.catalog_datasets(valid)  # no run trains on the aux pool
    cfg["runs"]["oe"]["outliers"]["sigma"] = 2.55
    with pytest.raises(ConfigError, match="no published GAN samples for sigma 2.55"):
        validate(cfg)


def test_catalog_resolves_every_published_sigma():
    assert gan_dataset(2.0) == "cifar100_gan_2" and gan_dataset("0.1") == "cifar100_gan_0_1"
    assert gan_sigma("cifar100_gan_10") == "10.0" and gan_sigma("cifar100_gan_2_0") is None
    assert gan_sigma("cifar100_gan_11") is None and "cifar100_gan_11" not in DATASETS
    spec = DATASETS.get("cifar100_gan_7_3")
    assert spec.resources[0].filename == "samples-7.3.npz" and spec.resources[0].md5 is None
    assert spec.resources[0].urls == ("https://files.kondas.de/goe-data/samples-7.3.npz",)
    assert DATASETS.get("cifar100_gan_2").resources[0].md5 == "f130876edbbc13ab2bdc6f7caaa1180d"
    assert not any(n.endswith("_7_3") for n in DATASETS.names())  # the README table lists fixed ones


def test_existing_runs_keep_their_params(test_config):
    """Runs without `outliers` do not see benchmark.gan; runs with GAN outliers depend on it."""
    plain = validate(test_config)
    changed = copy.deepcopy(test_config)
    changed["benchmark"]["gan"] = {"epochs": 9, "width": 3}
    assert steps.run_config(validate(changed), "tiny") == steps.run_config(plain, "tiny")
    assert "gan" not in yaml.safe_dump(steps.run_config(plain, "tiny"))
    cfg = validate(_config(outliers={"source": "gan", "sigma": 1.0}))
    rc = steps.run_config(cfg, "oe")
    assert rc["benchmark"]["gan"]["source"] == "trained" and "aux_size" not in rc["benchmark"]
    cfg2 = validate(
        {
            **_config(outliers={"source": "gan", "sigma": 1.0}),
            "benchmark": {"name": "mnist5k", "gan": {"epochs": 9}},
        }
    )
    assert steps.run_config(cfg2, "oe") != rc
    assert steps.run_config(validate(_config()), "oe")["benchmark"]["aux_size"] == 5000


def test_outlier_count_subsets_are_seeded_and_shared():
    a = steps.outlier_indices(100, 10, seed=0, sigma="2.0")
    assert len(a) == 10 and len(set(a)) == 10 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, steps.outlier_indices(100, 10, seed=0, sigma="2.0"))
    assert not np.array_equal(a, steps.outlier_indices(100, 10, seed=0, sigma="3.0"))
    assert (
        steps.outlier_indices(100, None, 0, "2.0") is None and steps.outlier_indices(10, 10, 0, "2.0") is None
    )


def test_gan_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, oodflow.gan, oodflow.data.catalog; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
