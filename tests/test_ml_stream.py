"""Streamed multi-label sets: written chunk by chunk, read in place, converted per batch (issue 22).

The oracles: the whole-array writer as numpy describes it (``np.lib.format.write_array`` into a
stored zip member, the layout the repo wrote before streaming), the whole-set conversion of
``model_input``, and training on the whole converted arrays in memory.
"""

from __future__ import annotations

import copy
import io as stdio
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from oodflow import io
from oodflow.config import validate
from oodflow.data.derive import Images
from oodflow.multilabel import steps
from oodflow.multilabel.stream import StoredImages, load_stored, model_input

ROOT = Path(__file__).resolve().parents[1]


def _whole_npz(path: Path, **arrays: np.ndarray) -> None:
    """The byte-stable npz written in one piece: each array through numpy's own .npy writer into a
    stored zip member with a fixed timestamp (the repo's save_npz before streaming)."""
    buf = stdio.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            member = stdio.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    path.write_bytes(buf.getvalue())


def _images(n: int, side: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def test_chunked_save_is_byte_identical_to_the_whole_array_writer(tmp_path):
    x, y = _images(53), np.eye(4, dtype=np.uint8)[np.arange(53) % 4]
    extra = {"s": np.float64(2.5), "e": np.zeros((0, 3), np.float32)}
    _whole_npz(tmp_path / "whole.npz", x=x, y=y, **extra)
    chunks = (x[i : i + 7] for i in range(0, 53, 7))
    io.save_npz(tmp_path / "chunked.npz", x=io.Streamed(x.shape, np.uint8, chunks), y=y, **extra)
    io.save_npz(tmp_path / "plain.npz", x=x, y=y, **extra)
    want = (tmp_path / "whole.npz").read_bytes()
    assert (tmp_path / "chunked.npz").read_bytes() == want
    assert (tmp_path / "plain.npz").read_bytes() == want
    # chunks that do not add up to the declared shape fail, and leave no file behind
    with pytest.raises(ValueError, match="45 rows in its chunks, expected 53"):
        io.save_npz(tmp_path / "short.npz", x=io.Streamed(x.shape, np.uint8, [x[:45]]))
    assert not (tmp_path / "short.npz").exists()
    with pytest.raises(ValueError, match="chunk of 'x'"):
        io.save_npz(tmp_path / "bad.npz", x=io.Streamed(x.shape, np.uint8, [x[:, :8]]))


def _peak_building(tmp_path: Path, n: int, chunk: int) -> tuple[int, list[int]]:
    calls: list[int] = []

    def read(pos: np.ndarray) -> np.ndarray:  # one synthetic decoded chunk per call
        calls.append(len(pos))
        return np.repeat((pos % 251).astype(np.uint8)[:, None, None, None], 32, 1).repeat(32, 2).repeat(3, 3)

    images = Images(n, (32, 32, 3), read)
    y = np.zeros((n, 5), np.uint8)
    tracemalloc.start()
    tracemalloc.reset_peak()
    save = io.Streamed(images.shape, np.uint8, images.chunks(chunk))
    io.save_npz(tmp_path / f"set{n}.npz", x=save, y=y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    made = list(calls)
    got = io.load_npz(tmp_path / f"set{n}.npz")["x"]
    assert np.array_equal(got, images.array())  # the chunks, concatenated, are the set
    return peak, made


def test_builder_writes_chunk_by_chunk_with_memory_independent_of_the_set_size(tmp_path):
    chunk, image = 64, 32 * 32 * 3
    small, calls_small = _peak_building(tmp_path, 256, chunk)
    large, calls_large = _peak_building(tmp_path, 4096, chunk)
    assert max(calls_large) == chunk and sum(calls_large) == 4096 and len(calls_large) == 64
    # peak: a few chunks (the decoded chunk and its temporaries), never the set (4096 images = 12.6 MB)
    bound = 8 * chunk * image + 5 * 4096 + 200_000
    assert small < bound and large < bound, (small, large, bound)
    assert large < 0.1 * 4096 * image


def test_members_are_read_in_place_and_mmap_views_are_read_only(tmp_path):
    x, y = _images(2000, 32), np.ones((2000, 3), np.uint8)
    io.save_npz(tmp_path / "s.npz", x=x, y=y)
    tracemalloc.start()
    arrays = io.load_npz(tmp_path / "s.npz", required={"x": 4, "y": 2}, mmap=True)
    members = io.npz_members(tmp_path / "s.npz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < x.nbytes / 20  # nothing loaded (x is 6.1 MB)
    assert isinstance(arrays["x"], np.memmap) and not arrays["x"].flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        arrays["x"][0, 0, 0, 0] = 1
    assert np.array_equal(arrays["x"], x) and np.array_equal(arrays["y"], y)
    rows = np.array([5, 6, 7, 1999, 0, 5])
    assert np.array_equal(members["x"].take(rows), x[rows])
    assert np.array_equal(members["x"].block(1990, 2100), x[1990:])
    # a pickled member (a data-loader worker) reads on its own
    assert np.array_equal(pickle.loads(pickle.dumps(members["x"])).take([3]), x[[3]])
    with pytest.raises(io.FormatError, match="missing array 'z'"):
        io.load_npz(tmp_path / "s.npz", required={"z": None}, mmap=True)


def test_unsafe_or_unmappable_members_are_refused_naming_the_file(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(io.FormatError, match=r"obj\.npz: refuses to load safely"):
        io.npz_members(tmp_path / "obj.npz")
    np.savez_compressed(tmp_path / "zip.npz", x=np.zeros(10))
    with pytest.raises(io.FormatError, match=r"zip\.npz: array 'x' is compressed"):
        io.load_npz(tmp_path / "zip.npz", mmap=True)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(io.FormatError, match=r"junk\.npz: not a readable"):
        io.npz_members(tmp_path / "junk.npz")


def _bench():
    return steps.ml_benchmark(validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text())))


def test_per_batch_conversion_equals_the_whole_set_converted_bit_for_bit(tmp_path):
    bench = _bench()
    side, ch = bench.image_size, bench.channels
    x = np.random.default_rng(1).integers(0, 256, (300, side, side, ch), dtype=np.uint8)
    io.save_npz(tmp_path / "s.npz", x=x, y=np.zeros((300, bench.num_labels), np.uint8))
    whole = model_input(x, bench)  # the old path: the whole set at once
    images, y = load_stored(tmp_path / "s.npz", bench)
    assert images.shape == whole.shape and y.shape == (300, bench.num_labels)
    idx = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:37]
    assert images[idx].numpy().tobytes() == whole[idx.numpy()].tobytes()
    assert images[250:400].numpy().tobytes() == whole[250:].tobytes()
    assert images[7].numpy().tobytes() == whole[7].tobytes()
    with pytest.raises(ValueError, match="expected uint8 images"):
        StoredImages(np.zeros((2, side + 1, side + 1, ch), np.uint8), bench)


def _built(tmp_path: Path):
    config = validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    b = config["multilabel"]["benchmark"]
    b.update(train_size=96, val_size=32, test_size=16, oe_size=80)
    config["multilabel"]["runs"]["edge"]["epochs"] = 1
    out = {s: str(tmp_path / f"{s}.npz") for s in ("train", "val", "test")}
    steps.build_id(config, out)
    steps.build_outliers(config, "oe", "aux", str(tmp_path / "aux.npz"))
    return config, out


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_training_equals_training_on_the_whole_arrays(tmp_path, workers):
    from oodflow.multilabel.training import train_ml

    config, out = _built(tmp_path)
    bench, rc = steps.ml_benchmark(config), steps.run_config(config, "edge")
    rc["run"]["batch_size"], rc["run"]["oe_batch_size"] = 32, 24
    common = {"num_labels": bench.num_labels, "device": torch.device("cpu"), "log": lambda m: None}

    def y(path):
        return torch.from_numpy(load_stored(path, bench)[1].astype(np.float32))

    def whole(path):  # the old path: the whole set converted to float32 in memory
        return torch.from_numpy(steps.load_inputs(path, bench)[0])

    ref, _ = train_ml(
        copy.deepcopy(rc),
        (whole(out["train"]), y(out["train"])),
        (whole(out["val"]), y(out["val"])),
        checkpoint_path=tmp_path / "a.pt",
        oe=whole(tmp_path / "aux.npz"),
        **common,
    )
    got, _ = train_ml(
        copy.deepcopy(rc),
        (load_stored(out["train"], bench)[0], y(out["train"])),
        (load_stored(out["val"], bench)[0], y(out["val"])),
        checkpoint_path=tmp_path / "b.pt",
        oe=load_stored(tmp_path / "aux.npz", bench)[0],
        workers=workers,
        **common,
    )
    for key, value in ref.state_dict().items():
        assert value.numpy().tobytes() == got.state_dict()[key].numpy().tobytes(), key


def test_spine_sets_written_from_images_equal_the_whole_array(tmp_path):
    from oodflow.data import stored

    x, y = _images(70, 8), np.arange(70, dtype=np.int64) % 3
    calls: list[int] = []

    def read(pos):
        calls.append(len(pos))
        return x[pos]

    meta = {"name": "s", "sources": ["fake"], "seed": 0, "num_classes": 3}
    a = stored.write_set(tmp_path / "a.npz", Images(70, (8, 8, 3), read), y, **meta)
    b = stored.write_set(tmp_path / "b.npz", x, y, **meta)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes() and a == b
    assert calls and max(calls) <= 512
    with pytest.raises(io.FormatError, match="x has 69 images but y has 70"):
        stored.write_set(tmp_path / "c.npz", Images(69, (8, 8, 3), read), y, **meta)
