"""Pretrained weights as catalog resources: the entry, the verified download (mirrors, prefix check,
pin), the safe loader, the smoke fake and the workflow's download job (rule download_weights)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest
import torch

from oodflow import steps
from oodflow.config import ConfigError, validate
from oodflow.data.catalog import DATASETS
from oodflow.download import DownloadError, PinnedChecksums, fetch
from oodflow.mirrors import MirrorError, write_smoke_manifest
from oodflow.models import MODELS, build_model, rebuild_args
from oodflow.models.weights import (
    WEIGHTS,
    config_weights,
    load_pretrained,
    markdown_table,
    weights_file,
    weights_for,
)
from oodflow.smoke.weights import fake_state_dict, write_fake_weights
from workflow_runner import snakemake

ROOT = Path(__file__).resolve().parents[1]
NAME = "resnet50_imagenet1k_v1"
FILE = "resnet50-0676ba61.pth"


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Path:
    """One fake of the ResNet-50 file, in a mirror laid out as ``<base>/<name>/<file>``."""
    return write_fake_weights(NAME, tmp_path_factory.mktemp("mirror") / NAME)


@pytest.fixture(scope="module")
def fake_state(fake) -> dict[str, torch.Tensor]:
    return torch.load(fake, weights_only=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean download environment with a temporary pins manifest; returns a setter."""
    for var in ("OODFLOW_MIRRORS", "OODFLOW_MIRRORS_ONLY"):
        monkeypatch.delenv(var, raising=False)
    pins = tmp_path / "pins.json"
    monkeypatch.setenv("OODFLOW_CHECKSUMS", str(pins))

    def set_env(**values: str) -> Path:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        return pins

    return set_env


# ------------------------------------------------------------------------------------- the entry
def test_the_catalog_entry_is_complete():
    spec = WEIGHTS.get(NAME)
    res = spec.resource
    assert WEIGHTS.names() == [NAME] and spec.name == NAME
    assert res.urls == (f"https://download.pytorch.org/models/{FILE}",) and res.filename == FILE
    # torchvision's file names embed the first 8 hex digits of the sha256 (torch.hub checks them)
    assert res.sha256_prefix == re.fullmatch(r"resnet50-([0-9a-f]{8})\.pth", FILE).group(1) == "0676ba61"
    assert res.md5 is None and res.sha256 is None  # no full checksum published: pinned on first download
    assert spec.model in MODELS and spec.model_args == {"pretrained": True}
    assert "BSD-3" in spec.licence and spec.homepage.startswith("https://")
    # the upstream network of the file: ResNet-50's published 25,557,032 parameters
    assert sum(p.numel() for p in spec.build_architecture().parameters()) == 25_557_032
    assert weights_file(NAME) == Path("resources/weights") / NAME / FILE
    assert NAME not in DATASETS  # mirrors share the layout <base>/<name>/<file> with the datasets


def test_which_runs_read_weights():
    assert weights_for("resnet50", {"pretrained": True, "hidden": 8}) == NAME
    assert weights_for("resnet50", {"pretrained": False}) is None
    assert weights_for("resnet50", {}) is None
    with pytest.raises(KeyError, match="model 'wrn40_2'.*no pretrained weights.*resnet50_imagenet1k_v1"):
        weights_for("wrn40_2", {"pretrained": True})
    config = {
        "runs": {"a": {"model": "wrn40_2", "model_args": {}}},
        "multilabel": {"runs": {"b": {"model": "resnet50", "model_args": {"pretrained": True}}}},
    }
    assert config_weights(config) == [NAME]
    assert config_weights({"runs": config["runs"]}) == []


# --------------------------------------------------------------------------------------- the fake
def test_the_fake_has_the_upstream_keys_and_shapes_and_is_deterministic(fake, fake_state, tmp_path):
    assert fake.name == FILE
    reference = WEIGHTS.get(NAME).build_architecture().state_dict()
    assert list(fake_state) == list(reference)
    assert all(
        fake_state[k].shape == v.shape and fake_state[k].dtype == v.dtype for k, v in reference.items()
    )
    # random values, not a fresh model's: BatchNorm statistics are perturbed too
    assert not torch.equal(fake_state["bn1.running_var"], torch.ones(64))
    assert _sha256(write_fake_weights(NAME, tmp_path)) == _sha256(fake)  # same name and seed: same bytes
    other = fake_state_dict(NAME, seed=1)
    assert not torch.equal(other["conv1.weight"], fake_state["conv1.weight"])


# --------------------------------------------------------------------------------- the download
def test_download_from_a_file_mirror_with_a_pinned_fake(fake, env, tmp_path):
    pins = env(OODFLOW_MIRRORS=fake.parent.parent.as_uri(), OODFLOW_MIRRORS_ONLY="1")
    PinnedChecksums(pins).pin(NAME, FILE, _sha256(fake))  # a manifest that pins the fake: explicit
    out = tmp_path / "resources" / "weights" / NAME / FILE
    steps.download_weights(NAME, str(out))
    assert _sha256(out) == _sha256(fake)
    steps.download_weights(NAME, str(out))  # present and verified: kept
    assert _sha256(out) == _sha256(fake)


def test_the_first_download_must_match_the_published_prefix(fake, env, tmp_path):
    """Without a pin, a file whose sha256 does not start with 0676ba61 is refused and nothing is pinned."""
    pins = env(OODFLOW_MIRRORS=fake.parent.parent.as_uri(), OODFLOW_MIRRORS_ONLY="1")
    out = tmp_path / NAME / FILE
    with pytest.raises(
        DownloadError, match=r"(?s)'resnet50-0676ba61.pth' of weights.*prefix mismatch: expected 0676ba61"
    ):
        steps.download_weights(NAME, str(out))
    assert not out.exists() and not list(out.parent.glob("*.part")) and not pins.exists()


def test_a_download_matching_the_prefix_pins_its_full_sha256(fake, tmp_path):
    sha = _sha256(fake)
    res = dataclasses.replace(WEIGHTS.get(NAME).resource, urls=(fake.as_uri(),), sha256_prefix=sha[:8])
    pins = PinnedChecksums(tmp_path / "pins.json")
    fetch(res, tmp_path / "a", dataset=NAME, pins=pins, progress=False, kind="weights")
    assert pins.get(NAME, FILE) == sha
    # later downloads are checked against the full pin: another file with the same prefix is refused
    impostor = tmp_path / "impostor" / FILE
    impostor.parent.mkdir()
    impostor.write_bytes(fake.read_bytes() + b"\0")
    res = dataclasses.replace(res, urls=(impostor.as_uri(),))
    with pytest.raises(DownloadError, match=f"sha256 mismatch: expected {sha}"):
        fetch(res, tmp_path / "b", dataset=NAME, pins=pins, progress=False, kind="weights")


def test_a_smoke_run_downloads_the_fake_of_its_smoke_mirror(fake, env, tmp_path):
    mirror = fake.parent.parent
    smoke_mirror = tmp_path / "smoke"
    (smoke_mirror / NAME).mkdir(parents=True)
    (smoke_mirror / NAME / FILE).write_bytes(fake.read_bytes())
    write_smoke_manifest(smoke_mirror, {f"{NAME}/{FILE}": _sha256(fake)})
    pins = env(OODFLOW_MIRRORS=smoke_mirror.as_uri())
    out = tmp_path / "out" / FILE
    steps.download_weights(NAME, str(out), smoke=True)
    assert _sha256(out) == _sha256(fake) and not pins.exists()  # a smoke run never pins
    with pytest.raises(MirrorError, match="smoke"):  # a real run refuses the smoke mirror
        steps.download_weights(NAME, str(tmp_path / "real" / FILE))
    assert mirror.is_dir()


def test_offline_without_a_mirror_fails_naming_the_file(env, tmp_path):
    env(OODFLOW_MIRRORS_ONLY="1")
    with pytest.raises(MirrorError, match=f"{NAME}/{FILE}: no URL.*OODFLOW_MIRRORS_ONLY=1"):
        steps.download_weights(NAME, str(tmp_path / FILE))
    env(OODFLOW_MIRRORS=(tmp_path / "empty-mirror").as_uri())  # a mirror without the file
    with pytest.raises(
        DownloadError, match=f"(?s)could not download '{FILE}' of weights '{NAME}'.*empty-mirror"
    ):
        steps.download_weights(NAME, str(tmp_path / FILE))
    with pytest.raises(ValueError, match=f"has the file '{FILE}', not 'other.pth'"):
        steps.download_weights(NAME, str(tmp_path / "other.pth"))


# -------------------------------------------------------------------------------------- loading
def test_a_pretrained_model_has_the_weights_of_the_file(fake, fake_state):
    torch.manual_seed(0)
    model = build_model("resnet50", num_classes=20, in_channels=3, pretrained=True, hidden=16, weights=fake)
    # backbone = torchvision's children up to avgpool: conv1 -> 0, bn1 -> 1, ..., layer4 -> 7
    children = [n for n, _ in WEIGHTS.get(NAME).build_architecture().named_children()][:-1]
    backbone = model.backbone.state_dict()
    compared = 0
    for key, value in fake_state.items():
        child, _, rest = key.partition(".")
        if child == "fc":  # replaced by EDGE's head
            continue
        assert torch.equal(backbone[f"{children.index(child)}.{rest}"], value), key
        compared += 1
    assert compared == len(backbone) == len(fake_state) - 2


def test_a_file_without_batchnorm_counters_loads(fake_state, tmp_path):
    """Files saved by torch < 0.4.1 have no ``num_batches_tracked``; they default to 0."""
    path = tmp_path / FILE
    torch.save({k: v for k, v in fake_state.items() if not k.endswith("num_batches_tracked")}, path)
    net = WEIGHTS.get(NAME).build_architecture()
    load_pretrained(net, path, NAME)
    assert torch.equal(net.layer1[0].bn1.running_mean, fake_state["layer1.0.bn1.running_mean"])
    assert int(net.bn1.num_batches_tracked) == 0


def test_a_missing_file_names_the_file_and_the_rule(tmp_path):
    missing = tmp_path / FILE
    with pytest.raises(
        FileNotFoundError, match=f"(?s){re.escape(str(missing))}.*snakemake.*download_weights"
    ):
        build_model("resnet50", num_classes=20, in_channels=3, pretrained=True, weights=missing)
    with pytest.raises(ValueError, match=f"is pretrained.*resources/weights/{NAME}/{FILE}.*download_weights"):
        build_model("resnet50", num_classes=20, in_channels=3, pretrained=True)


def test_a_wrong_file_is_refused_naming_the_key(fake_state, tmp_path):
    net = WEIGHTS.get(NAME).build_architecture()
    before = net.conv1.weight.detach().clone()
    wrong_shape = {**fake_state, "layer3.0.conv2.weight": torch.zeros(256, 256, 1, 1)}
    torch.save(wrong_shape, tmp_path / "shape.pth")
    with pytest.raises(
        ValueError,
        match=r"key 'layer3.0.conv2.weight' has shape \(256, 256, 1, 1\), expected \(256, 256, 3, 3\)",
    ):
        load_pretrained(net, tmp_path / "shape.pth", NAME)
    missing = {k: v for k, v in fake_state.items() if k != "layer4.2.bn3.weight"}
    torch.save({**missing, "head.weight": torch.zeros(1)}, tmp_path / "keys.pth")
    with pytest.raises(ValueError, match="missing keys 'layer4.2.bn3.weight'; unexpected keys 'head.weight'"):
        load_pretrained(net, tmp_path / "keys.pth", NAME)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a state dict"):
        load_pretrained(net, tmp_path / "list.pth", NAME)
    assert torch.equal(net.conv1.weight, before)  # a refused file loads nothing


RAN: list[str] = []


def _record(what: str) -> None:
    RAN.append(what)


class _Payload:
    def __reduce__(self):
        return (_record, ("unpickled code ran",))


def test_a_pickle_payload_is_refused(tmp_path):
    path = tmp_path / FILE
    torch.save({"conv1.weight": torch.zeros(1), "x": _Payload()}, path)
    net = WEIGHTS.get(NAME).build_architecture()
    with pytest.raises(ValueError, match=r"not a plain state dict.*weights_only=True") as info:
        load_pretrained(net, path, NAME)
    assert RAN == []
    advice = str(info.value).split("weights_only=True)", 1)[1]  # what follows names no way to run it
    assert "refused" in advice and "weights_only" not in advice and "trusted source" not in advice


def test_weights_are_not_a_model_argument_and_rebuilding_reads_no_file(fake):
    with pytest.raises(ConfigError, match=r"runs\.bce\.model_args\.weights: not a model argument"):
        _edge_config(model_args={"pretrained": True, "weights": "x.pth"})
    with pytest.raises(
        ConfigError, match=r"runs\.bce\.model_args\.pretrained: model 'small_cnn'.*no pretrained weights"
    ):
        _edge_config(model="small_cnn", model_args={"pretrained": True})
    with pytest.raises(ValueError, match="pretrained is not set"):
        build_model("resnet50", num_classes=2, in_channels=3, weights=fake)
    args = {"pretrained": True, "hidden": 8}
    assert rebuild_args(args) == {"pretrained": False, "hidden": 8} and args["pretrained"] is True
    assert rebuild_args({"hidden": 8}) == {"hidden": 8}
    pretrained = build_model("resnet50", num_classes=2, in_channels=3, weights=fake, **args)
    rebuilt = build_model("resnet50", num_classes=2, in_channels=3, **rebuild_args(args))
    rebuilt.load_state_dict(pretrained.state_dict())  # same architecture: a checkpoint loads strictly


def _edge_config(**bce):
    """config/papers/edge_voc2012.yaml with its ``bce`` run changed, validated."""
    import yaml

    raw = yaml.safe_load((ROOT / "config/papers/edge_voc2012.yaml").read_text())
    raw["multilabel"]["runs"]["bce"].update(bce)
    return validate(raw)


# ------------------------------------------------------------------------------------- workflow
def test_the_edge_dry_run_downloads_the_weights_once_for_every_job_that_builds_the_model(tmp_path):
    plan = snakemake(
        tmp_path, "-n", "--configfile", str(ROOT / "config/papers/edge_voc2012.yaml"), cores=1
    ).stdout
    target = f"resources/weights/{NAME}/{FILE}"
    jobs = re.findall(r"rule (\w+):\n    input: ([^\n]*)", plan)
    assert len(re.findall(r"rule download_weights:\n    output: " + re.escape(target), plan)) == 1
    readers = sorted(rule for rule, inputs in jobs if target in inputs.split(", "))
    # the four trainings and the OE selection at initialisation (trained: false); extraction reads model.pt
    assert readers == ["ml_oe_features", *["ml_train"] * 4]
    assert not any(rule == "ml_extract" and target in inputs for rule, inputs in jobs)
    # the `datasets` target fetches them too (everything a config downloads, before going offline)
    plan = snakemake(
        tmp_path, "datasets", "-n", "--configfile", str(ROOT / "config/papers/edge_voc2012.yaml"), cores=1
    ).stdout
    assert "rule download_weights:" in plan


def test_track_versions_the_weights_folder_with_dvc(tmp_path, capsys):
    """`python -m oodflow.datasets track` adds resources/weights/<name> of the weights a config reads."""
    from test_datasets_cli import dvc_repo, run_main, write_config

    repo = dvc_repo(tmp_path / "repo")
    runs = {"r": {"model": "resnet50", "model_args": {"pretrained": True}, "method": "ce"}}
    config = str(write_config(tmp_path / "c.yaml", runs=runs))
    code, _, err = run_main(capsys, "track", config, "-d", str(repo))
    assert code == 1 and "nothing to track" in err
    file = repo / "resources" / "weights" / NAME / FILE
    file.parent.mkdir(parents=True)
    file.write_bytes(b"weights")  # track versions what is there; the rules verified it on download
    code, out, err = run_main(capsys, "track", config, "-d", str(repo))
    assert code == 0, err
    assert "skipped resources/datasets/cifar10/downloads (missing)" in err
    assert f"resources/weights/{NAME}.dvc" in out and (repo / f"resources/weights/{NAME}.dvc").is_file()


def test_the_readme_lists_the_weights_catalog():
    assert markdown_table() in (ROOT / "README.md").read_text(), (
        "regenerate: python -m oodflow.models.weights"
    )


def test_the_rule_downloads_from_a_mirror_and_fails_offline_without_one(fake, tmp_path):
    pins = tmp_path / "pins.json"
    PinnedChecksums(pins).pin(NAME, FILE, _sha256(fake))
    target = f"resources/weights/{NAME}/{FILE}"
    config = ("--configfile", str(ROOT / "config" / "config.yaml"))
    env = {
        "OODFLOW_MIRRORS": fake.parent.parent.as_uri(),
        "OODFLOW_MIRRORS_ONLY": "1",
        "OODFLOW_CHECKSUMS": str(pins),
    }
    snakemake(tmp_path / "w", target, *config, cores=1, env=env)
    assert _sha256(tmp_path / "w" / target) == _sha256(fake)
    offline = {"OODFLOW_MIRRORS": "", "OODFLOW_MIRRORS_ONLY": "1", "OODFLOW_CHECKSUMS": str(pins)}
    proc = snakemake(tmp_path / "o", target, *config, cores=1, env=offline, check=False)
    log = (tmp_path / "o" / f"logs/weights/{NAME}/download_{FILE}.log").read_text()
    assert proc.returncode != 0 and f"{NAME}/{FILE}: no URL" in log and not (tmp_path / "o" / target).exists()
