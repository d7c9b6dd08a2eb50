"""GPU smoke check and throughput of the paper-scale backbones, on synthetic data of paper shape.

Runs the library's own code paths (training loop with a fine-tuning step, feature extraction, the
network scores ODIN and CORES) on CUDA when present, else CPU, and reports images/s plus the
epoch times they imply at paper scale. It also checks that two identically seeded training runs
give bit-identical weights on this device.

    python benchmarks/gpu_smoke.py --out smoke.json            # paper-shaped cases
    python benchmarks/gpu_smoke.py --tiny                      # a seconds-long CPU check of the script

Needs only torch/torchvision/numpy (no Snakemake), so it runs on a bare accelerator machine with
``PYTHONPATH=src``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from oodflow import features  # noqa: E402
from oodflow.scores import build_score  # noqa: E402
from oodflow.seeding import configure_determinism, resolve_device  # noqa: E402
from oodflow.training import Split, train  # noqa: E402

#: (case, model, classes, image side, paper train size, paper epochs)
CASES = [
    ("embedded_mnist5k_small_cnn", "small_cnn", 10, 28, 3_500, 12),
    ("aoe_cifar10_wrn40_2", "wrn40_2", 10, 32, 50_000, 100),
    ("adapt_cifar100_resnet34", "resnet34", 100, 32, 50_000, 500),
    ("food101_mobilenet_v3_large_64px", "mobilenet_v3_large", 101, 64, 75_750, 100),
    ("food101_mobilenet_v3_large_224px", "mobilenet_v3_large", 101, 224, 75_750, 100),
]


def synthetic(n: int, classes: int, side: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 3, side, side, generator=g), torch.randint(0, classes, (n,), generator=g))


def run_case(case, n: int, batch: int, device: torch.device, workdir: Path) -> dict:
    name, model_name, classes, side, paper_n, paper_epochs = case
    data, val = synthetic(n, classes, side, 0), synthetic(max(batch, n // 8), classes, side, 1)
    aux = synthetic(n, classes, side, 2)
    run = {
        "model": model_name,
        "model_args": {},
        "method": "ce",
        "method_args": {},
        "epochs": 1,
        "batch_size": batch,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "scheduler": "cosine",
        "augment": True,
    }
    config = {"seed": 0, "benchmark": {"name": "cifar10"}, "run": run}
    log = lambda msg: None  # noqa: E731

    def timed_train(cfg, ckpt, **kw):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model, rows = train(
            cfg, data, val, num_classes=classes, device=device, checkpoint_path=ckpt, log=log, **kw
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        return model, time.perf_counter() - start

    train(
        config,
        data,
        val,
        num_classes=classes,
        device=device,
        checkpoint_path=workdir / f"{name}-w.pt",
        log=log,
    )
    model_a, t_train = timed_train(config, workdir / f"{name}-a.pt")
    model_b, _ = timed_train(config, workdir / f"{name}-b.pt")
    identical = all(
        torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values())
    )
    ft_run = dict(
        run, method="energy_ft", method_args={"m_in": -25.0, "m_out": -7.0, "aux_batch_size": 2 * batch}
    )
    init = {k: v.detach().clone() for k, v in model_a.state_dict().items()}
    _, t_ft = timed_train(dict(config, run=ft_run), workdir / f"{name}-ft.pt", aux_split=aux, init_state=init)

    x = data.x.numpy()
    start = time.perf_counter()
    logits, feats = features.extract(model_a, x, batch_size=256, device=device)
    t_extract = time.perf_counter() - start
    net_scores = {}
    for score_name in ("odin", "cores"):
        scorer = build_score(score_name)
        start = time.perf_counter()
        parts = [scorer.score_inputs(model_a, data.x[i : i + 256].to(device)) for i in range(0, n, 256)]
        values = torch.cat(parts).cpu()
        net_scores[score_name] = {
            "images_per_s": round(n / (time.perf_counter() - start), 1),
            "finite": bool(torch.isfinite(values).all()),
        }
    train_ips = n / t_train
    return {
        "case": name,
        "model": model_name,
        "image_side": side,
        "params_M": round(sum(p.numel() for p in model_a.parameters()) / 1e6, 2),
        "train_images_per_s": round(train_ips, 1),
        "energy_ft_id_images_per_s": round(n / t_ft, 1),
        "extract_images_per_s": round(n / t_extract, 1),
        "network_scores": net_scores,
        "bit_identical_reruns": identical,
        "feature_dim": int(feats.shape[1]),
        "logits_finite": bool(torch.isfinite(torch.from_numpy(logits)).all()),
        "paper_epoch_min": round(paper_n / train_ips / 60, 2),
        "paper_baseline_h": round(paper_n * paper_epochs / train_ips / 3600, 2),
        "peak_gpu_mem_GiB": (
            round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=4096, help="synthetic training images per case")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long check of the script itself")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    configure_determinism()
    device = resolve_device(args.device)
    cases, n, batch = CASES, args.images, args.batch
    if args.tiny:
        cases = [(c[0], c[1], c[2], min(c[3], 32), c[4], c[5]) for c in CASES[:2]]
        n, batch = 64, 32
    results = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    results["cases"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            row = run_case(case, n, batch, device, Path(tmp))
            print(json.dumps(row), flush=True)
            results["cases"].append(row)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    assert all(math.isfinite(c["train_images_per_s"]) for c in results["cases"])


if __name__ == "__main__":
    main()
