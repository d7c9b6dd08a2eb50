"""GPU smoke check of the AOE attacks, the AOE training step and the adversarial evaluation.

On WRN-40-2 (the AOE paper's model) with a paper-shaped batch (128 ID + 128 outliers, 3x32x32):
every attack runs on CUDA on a train-mode copy; checks the eps-ball, that the model is untouched,
that a repeated AOE step (same seed, epoch, step) gives a bit-identical loss and gradients, that
the Gaussian noise is the same on CPU and CUDA (it is drawn from a CPU generator), and that the
adversarial-eval logits agree between CPU and CUDA. Reports the seconds per AOE step per attack.

    PYTHONPATH=src python benchmarks/aoe_gpu_smoke.py --out aoe_smoke.json
    PYTHONPATH=src python benchmarks/aoe_gpu_smoke.py --tiny          # seconds-long CPU check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from oodflow.adversarial import adversarial_logits  # noqa: E402
from oodflow.attacks import ATTACKS  # noqa: E402
from oodflow.attacks.outlier import attack_copy  # noqa: E402
from oodflow.methods import build_method  # noqa: E402
from oodflow.models import build_model  # noqa: E402
from oodflow.seeding import configure_determinism, resolve_device  # noqa: E402

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--tiny", action="store_true", help="small model and batch, CPU is fine")
    args = parser.parse_args()
    configure_determinism()
    device = resolve_device("auto")
    batch, width = (8, 0.125) if args.tiny else (128, 1.0)
    torch.manual_seed(0)
    model = build_model("wrn40_2", num_classes=10, in_channels=3, width=width).to(device).train()
    g = torch.Generator().manual_seed(1)
    x = ((torch.rand(batch, 3, 32, 32, generator=g) - 0.45) / 0.2).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    x_aux = ((torch.rand(batch, 3, 32, 32, generator=g) - 0.45) / 0.2).to(device)
    report: dict = {"device": str(torch.cuda.get_device_name() if device.type == "cuda" else "cpu")}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ATTACKS.names():
        extra = {"steps": 20, "alpha": 0.03} if name in ("pgd", "mifgsm") else {}
        method = build_method("aoe", attack=name, eps=0.5, mean=CIFAR_MEAN, std=CIFAR_STD, **extra)
        results = []
        for _ in range(2):
            model.load_state_dict(state)
            model.zero_grad(set_to_none=True)
            torch.manual_seed(5)  # dropout
            method.set_epoch(3, seed=0)
            _sync(device)
            start = time.perf_counter()
            loss, _ = method(model, x, y, x_aux)
            loss.backward()
            _sync(device)
            seconds = time.perf_counter() - start
            grads = torch.cat([p.grad.flatten() for p in model.parameters()])
            results.append((loss.item(), grads.cpu(), seconds))
        model.load_state_dict(state)
        method.set_epoch(3, seed=0)
        gen = method.next_generator()
        attacked = method.attack(attack_copy(model), x, y, x_aux, gen)
        eps = torch.tensor([0.5 / s for s in CIFAR_STD], device=device).reshape(3, 1, 1)
        within = bool(((attacked - x_aux).abs() <= eps + 1e-5).all()) if name != "eps_gauss" else None
        report[name] = {
            "loss": results[0][0],
            "repeat_bit_identical": results[0][0] == results[1][0]
            and torch.equal(results[0][1], results[1][1]),
            "seconds_per_step": round(results[1][2], 4),
            "within_eps_ball": within,
            "model_untouched": all(torch.equal(v, state[k]) for k, v in model.state_dict().items()),
        }
    # Gaussian noise: same values on CPU and CUDA (CPU generator)
    gauss = build_method("aoe", attack="eps_gauss", eps=0.5)
    on_device = gauss.attack(model, x, y, x_aux, torch.Generator().manual_seed(3)) - x_aux
    cpu_gen = torch.Generator().manual_seed(3)
    on_cpu = gauss.attack(model.cpu(), x.cpu(), y.cpu(), x_aux.cpu(), cpu_gen) - x_aux.cpu()
    report["eps_gauss_cpu_equals_device"] = bool(torch.allclose(on_device.cpu(), on_cpu, atol=1e-6))
    model.to(device).eval()
    eps_list = [0.0, 0.1, 0.5, 1.0]
    start = time.perf_counter()
    dev_logits = adversarial_logits(model, x, eps_list, batch_size=batch)
    report["adversarial_logits_seconds"] = round(time.perf_counter() - start, 4)
    cpu_logits = adversarial_logits(model.cpu(), x.cpu(), eps_list, batch_size=batch)
    report["adversarial_logits_max_abs_diff_cpu_vs_device"] = float(abs(dev_logits - cpu_logits).max())
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
