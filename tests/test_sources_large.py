"""The list-form dataset sources: catalog entries, and every parser on a tiny fake upstream layout."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

import fakes_large as fk
from oodflow.data.catalog import DatasetSpec
from oodflow.data.sources import large
from oodflow.io import FormatError

OOD_FOLDERS = {"inaturalist_ood": "iNaturalist", "sun_ood": "SUN", "places_ood": "Places"}

FAKES = {
    "food101": fk.write_food101,
    "flowers102": fk.write_flowers102,
    "oxford_pets": fk.write_oxford_pets,
    "dtd": fk.write_dtd,
    "voc2012": fk.write_voc2012,
    "coco2014": fk.write_coco2014,
    "nuswide": fk.write_nuswide,
    **{
        name: (lambda raw, folder=folder: fk.write_mos_ood(raw, folder))
        for name, folder in OOD_FOLDERS.items()
    },
}


def read_tsv(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "path\tlabel"
    rows = [tuple(line.split("\t")) for line in lines[1:]]
    assert all(len(r) == 2 for r in rows), path
    return rows


def parse(name: str, raw: Path, out: Path, **kwargs) -> dict:
    return getattr(large, f"parse_{name}")(raw, out, **kwargs)


def check_prepared(name: str, raw: Path, out: Path, summary: dict, expected: dict) -> None:
    spec = large.SPECS[name]
    prepared = json.loads((out / "prepared.json").read_text())
    assert prepared == summary
    assert prepared["dataset"] == name and prepared["form"] == "list"
    assert prepared["classes"] == expected["classes"]
    assert set(prepared["splits"]) == set(spec.splits)
    for split, rows in expected["splits"].items():
        got = read_tsv(out / f"{split}.tsv")
        assert got == rows, split
        assert [p for p, _ in got] == sorted(p for p, _ in got)
        assert prepared["splits"][split] == {"count": len(rows)}
        for path, _ in got:
            assert (raw / path).is_file(), path


# ------------------------------------------------------------------------------------ catalog
def test_specs_are_complete_and_consistent():
    expected = {"food101", "flowers102", "oxford_pets", "dtd", "places365_val", "voc2012", "coco2014",
                "nuswide", "inaturalist_ood", "sun_ood", "places_ood"}  # fmt: skip
    assert set(large.SPECS) == expected
    for name, spec in large.SPECS.items():
        assert isinstance(spec, DatasetSpec) and spec.name == name
        assert spec.form == "list" and spec.splits and spec.homepage and spec.licence and spec.approx_size
        module, _, attr = spec.parser.partition(":")
        assert module == large.__name__ and attr == f"parse_{name}" and callable(getattr(large, attr))
        assert spec.resources and len({r.filename for r in spec.resources}) == len(spec.resources)
        for res in spec.resources:
            assert res.urls and all(u.startswith(("http://", "https://")) for u in res.urls)
            assert res.md5 is None or re.fullmatch(r"[0-9a-f]{32}", res.md5)
            assert res.sha256 is None


def test_published_md5s_match_the_reference():
    md5 = {r.filename: r.md5 for spec in large.SPECS.values() for r in spec.resources}
    assert md5["food-101.tar.gz"] == "85eeb15f3717b99a5da872d97d918f87"
    assert md5["102flowers.tgz"] == "52808999861908f626f3c1f4e79d11fa"
    assert md5["imagelabels.mat"] == "e0620be6f572b9609742df49c70aed4d"
    assert md5["setid.mat"] == "a5357ecc9cb78c4bef273ce3793fc85c"
    assert md5["images.tar.gz"] == "5c4f3ee8e5d25df40f4fd59a7f44e54c"
    assert md5["annotations.tar.gz"] == "95a8c909bbe2e81eed6a22bccdf3f68f"
    assert md5["dtd-r1.0.1.tar.gz"] == "fff73e5086ae6bdbea199a49dfb8a4c1"
    assert md5["val_256.tar"] == "e27b17d8d44f4af9a78502beb927f808"
    assert md5["filelist_places365-standard.tar"] == "35a0585fee1fa656440f3ab298f8479c"
    for name in ("iNaturalist.tar.gz", "SUN.tar.gz", "Places.tar.gz", "train2014.zip", "Groundtruth.zip"):
        assert md5[name] is None  # nothing published: the sha256 gets pinned


def test_unverified_facts_are_marked():
    assert "UNVERIFIED" in large.NUSWIDE.notes
    for name in OOD_FOLDERS:
        assert "UNVERIFIED" in large.SPECS[name].notes
    assert "not canonical" in large.PLACES365_VAL.notes.lower()


# ------------------------------------------------------------------------------------ parsers
@pytest.mark.parametrize("name", sorted(FAKES))
def test_parser_on_fake(name, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    expected = FAKES[name](raw)
    summary = parse(name, raw, out)
    check_prepared(name, raw, out, summary, expected)


def test_label_mappings(tmp_path):
    """Spot checks of the mappings the fakes exercise (1-based -> 0-based, multi-label strings)."""
    raw = tmp_path / "raw"
    fk.write_flowers102(raw)
    large.parse_flowers102(raw, tmp_path / "fl")
    val = dict(read_tsv(tmp_path / "fl" / "val.tsv"))
    assert val["jpg/image_00002.jpg"] == "101"  # label 102 -> 101
    assert len(json.loads((tmp_path / "fl" / "prepared.json").read_text())["classes"]) == 102
    fk.write_coco2014(raw)
    large.parse_coco2014(raw, tmp_path / "co")
    train = dict(read_tsv(tmp_path / "co" / "train.tsv"))
    assert train["train2014/COCO_train2014_000000000009.jpg"] == "0 79"  # duplicates collapse, ascending
    assert train["train2014/COCO_train2014_000000000030.jpg"] == ""


def test_parsers_follow_symlinked_top_level_folders(tmp_path):
    """``prepare`` links every archive's top-level entry into raw_dir; folder listings must follow."""
    unpacked, raw = tmp_path / "unpacked", tmp_path / "raw"
    expected_dtd = fk.write_dtd(unpacked)
    expected_sun = fk.write_mos_ood(unpacked, "SUN")
    raw.mkdir()
    for entry in unpacked.iterdir():
        (raw / entry.name).symlink_to(entry)
    check_prepared("dtd", raw, tmp_path / "d", large.parse_dtd(raw, tmp_path / "d"), expected_dtd)
    check_prepared("sun_ood", raw, tmp_path / "s", large.parse_sun_ood(raw, tmp_path / "s"), expected_sun)


def test_output_is_byte_stable(tmp_path):
    raw = tmp_path / "raw"
    fk.write_voc2012(raw)
    large.parse_voc2012(raw, tmp_path / "a")
    large.parse_voc2012(raw, tmp_path / "b")
    for f in sorted((tmp_path / "a").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes()
    assert not list((tmp_path / "a").glob(".*"))  # no temporary files left


# ----------------------------------------------------------------------------- Places365 ood10k
def test_places_ood_subset_is_deterministic_and_recorded(tmp_path):
    raw = tmp_path / "raw"
    expected = fk.write_places365_val(raw, n=12)
    summary = large.parse_places365_val(raw, tmp_path / "a", ood_size=5)
    large.parse_places365_val(raw, tmp_path / "b", ood_size=5)
    check_prepared("places365_val", raw, tmp_path / "a", summary, expected)
    for f in ("ood10k.tsv", large.PLACES_OOD_INDEX, "prepared.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    record = json.loads((tmp_path / "a" / large.PLACES_OOD_INDEX).read_text())
    picked = np.sort(np.random.default_rng(0).choice(12, size=5, replace=False)).tolist()
    assert record["indices"] == picked
    assert record["seed"] == 0 and record["size"] == 5 and record["population"] == 12
    assert record["source_split"] == "val"
    val = read_tsv(tmp_path / "a" / "val.tsv")
    assert read_tsv(tmp_path / "a" / "ood10k.tsv") == [val[i] for i in picked]
    assert summary["splits"]["ood10k"] == {"count": 5}
    assert large.PLACES_OOD_SIZE == 10_000


def test_places_ood_subset_size_is_checked(tmp_path):
    raw = tmp_path / "raw"
    fk.write_places365_val(raw, n=4)
    with pytest.raises(FormatError, match="places365_val.txt"):
        large.parse_places365_val(raw, tmp_path / "out", ood_size=5)
    with pytest.raises(ValueError, match="ood_size"):
        large.parse_places365_val(raw, tmp_path / "out", ood_size=0)


# ------------------------------------------------------------------------------- broken layouts
def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _drop_first_line(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))


BROKEN = [
    # (dataset, what to break (relative to raw), how, the file the error must name)
    ("food101", "food-101/meta/test.txt", _remove, "test.txt"),
    ("food101", "food-101/images/apple_pie/134.jpg", _remove, "train.txt"),
    ("flowers102", "setid.mat", lambda p: savemat(p, {"train": np.array([[1]])}), "setid.mat"),
    ("flowers102", "jpg/image_00007.jpg", _remove, "setid.mat"),
    ("flowers102", "imagelabels.mat", lambda p: p.write_bytes(b"not a mat file"), "imagelabels.mat"),
    ("oxford_pets", "images/Bengal_1.jpg", _remove, "test.txt"),
    ("oxford_pets", "annotations/trainval.txt", _remove, "trainval.txt"),
    ("dtd", "dtd/labels/val1.txt", _remove, "val1.txt"),
    ("dtd", "dtd/images/dotted/dotted_0010.jpg", _remove, "val1.txt"),
    ("dtd", "dtd/images/banded/notes.txt", lambda p: p.write_text("x"), "notes.txt"),
    ("voc2012", "VOCdevkit/VOC2012/ImageSets/Main/cow_val.txt", _remove, "cow_val.txt"),
    ("voc2012", "VOCdevkit/VOC2012/ImageSets/Main/sofa_train.txt", _drop_first_line, "sofa_train.txt"),
    ("voc2012", "VOCdevkit/VOC2012/JPEGImages/2008_000003.jpg", _remove, "val.txt"),
    ("coco2014", "annotations/instances_val2014.json", _remove, "instances_val2014.json"),
    ("coco2014", "val2014/COCO_val2014_000000000073.jpg", _remove, "instances_val2014.json"),
    ("nuswide", "Groundtruth/TrainTestLabels/Labels_concept07_Test.txt", _drop_first_line,
     "Labels_concept07_Test.txt"),
    ("nuswide", "ConceptsList/Concepts81.txt", _drop_first_line, "Concepts81.txt"),
    ("nuswide", "Flickr/zebra/0003_1.jpg", _remove, "TrainImagelist.txt"),
    ("inaturalist_ood", "iNaturalist/images", _remove, "images"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "target", "breaker", "named"), BROKEN, ids=lambda v: getattr(v, "__name__", v)
)
def test_broken_layout_raises_format_error_naming_the_file(name, target, breaker, named, tmp_path):
    raw = tmp_path / "raw"
    FAKES[name](raw)
    breaker(raw / target)
    with pytest.raises(FormatError, match=re.escape(named)):
        parse(name, raw, tmp_path / "out")
    assert not (tmp_path / "out" / "prepared.json").exists()


def test_coco_annotation_of_unknown_image(tmp_path):
    raw = tmp_path / "raw"
    fk.write_coco2014(raw)
    path = raw / "annotations" / "instances_train2014.json"
    data = json.loads(path.read_text())
    data["annotations"].append({"id": 99, "image_id": 12345, "category_id": 1})
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"instances_train2014\.json.*12345"):
        large.parse_coco2014(raw, tmp_path / "out")


def test_split_files_with_odd_lines(tmp_path):
    raw = tmp_path / "raw"
    fk.write_oxford_pets(raw)
    (raw / "annotations" / "test.txt").write_text("Bengal_1 3 1\n")
    with pytest.raises(FormatError, match="test.txt"):
        large.parse_oxford_pets(raw, tmp_path / "out")
    fk.write_food101(raw)
    (raw / "food-101" / "meta" / "train.txt").write_text("pizza/1\n")  # not a class of classes.txt
    with pytest.raises(FormatError, match="train.txt"):
        large.parse_food101(raw, tmp_path / "out")
    fk.write_places365_val(raw)
    (raw / "places365_val.txt").write_text("Places365_val_00000001.jpg 7\n")  # only 3 categories
    with pytest.raises(FormatError, match="places365_val.txt"):
        large.parse_places365_val(raw, tmp_path / "out", ood_size=1)
