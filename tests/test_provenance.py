"""oodflow.provenance: the scale a results folder records (smoke, embedded, paper)."""

from __future__ import annotations

import pytest

from oodflow import provenance
from oodflow.config import load
from oodflow.io import FormatError


def test_scale_of_each_part(root):
    default = load(root / "config" / "config.yaml")
    assert {p: provenance.scale(default, p) for p in provenance.PARTS} == dict.fromkeys(
        provenance.PARTS, "embedded"
    )
    assert provenance.scale(load(root / "config" / "papers" / "food101.yaml"), "spine") == "paper"
    assert provenance.scale(load(root / "config" / "papers" / "osr_auroc.yaml"), "osr") == "paper"
    assert provenance.scale(load(root / "config" / "papers" / "edge_voc2012.yaml"), "multilabel") == "paper"
    assert provenance.scale({**default, "smoke": True}, "spine") == "smoke"
    with pytest.raises(ValueError, match="valid: spine, osr, multilabel"):
        provenance.scale(default, "gan")


def test_record_round_trip_and_bad_file(tmp_path, root):
    rec = provenance.record(load(root / "config" / "config.yaml"), "osr")
    assert rec == {"part": "osr", "scale": "embedded", "protocol": {"datasets": ["mnist5k"], "trials": [0],
                                                                    "epochs": 8}}  # fmt: skip
    provenance.write(tmp_path / "provenance.json", rec)
    assert provenance.read_scale(tmp_path / "provenance.json") == "embedded"
    (tmp_path / "bad.json").write_text('{"scale": "huge"}')
    with pytest.raises(FormatError, match="bad.json"):
        provenance.read_scale(tmp_path / "bad.json")


def test_a_paper_config_changed_in_its_protocol_is_custom(root):
    """paper only for the paper config's own protocol: fewer epochs, trials or images make it custom;
    the device it runs on does not matter."""
    food = load(root / "config" / "papers" / "food101.yaml")
    assert provenance.scale({**food, "device": "cpu"}, "spine") == "paper"
    fewer = {**food, "runs": {**food["runs"], "baseline": {**food["runs"]["baseline"], "epochs": 3}}}
    assert provenance.scale(fewer, "spine") == "custom"
    osr = load(root / "config" / "papers" / "osr_auroc.yaml")
    assert provenance.scale({**osr, "osr": {**osr["osr"], "trials": [0]}}, "osr") == "custom"
    edge = load(root / "config" / "papers" / "edge_voc2012.yaml")
    ml = edge["multilabel"]
    small = {**edge, "multilabel": {**ml, "benchmark": {**ml["benchmark"], "train_size": 100}}}
    assert provenance.scale(small, "multilabel") == "custom"
    assert provenance.record(fewer, "spine")["protocol"]["epochs"]["baseline"] == 3
