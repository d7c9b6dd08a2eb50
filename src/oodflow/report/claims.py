"""Claims, not deltas: does each paper's qualitative finding hold on the benchmark a config ran?

The registry (``config/papers/references/claims.yaml``, format in its header) names, per claim, two
sides ``a`` and ``b`` (run and score), a metric, an OOD set (or their mean) and the sign the paper
predicts for the difference ``d = metric(a) - metric(b)``. This module measures ``d`` with an interval
and gives a verdict:

* **Paired bootstrap over test samples.** Both sides are scored on the same test images, so a replicate
  resamples the images once and evaluates both runs on that resample (ID and each OOD set resampled
  independently, as in :mod:`oodflow.bootstrap`, whose weighted AUROC/FPR@95 it reuses). Per seed the
  draws are, in order: the ID weights, then one weight matrix per OOD set in the claim's order, from
  ``numpy.random.default_rng(derive_seed(seed, "claims", claim id))``.
* **Over seeds** when at least :data:`MIN_SEEDS` seeds ran: a replicate also resamples the seeds with
  replacement and averages their replicate differences (a two-level bootstrap); with fewer seeds it
  averages the seeds' replicate differences (test-sample variance only, the verdict says so).
* **Verdict**: ``holds`` when the 95 % percentile interval lies strictly on the predicted side of 0,
  ``contradicted`` when strictly on the other, ``inconclusive`` when it contains 0 (or when no
  interval exists: a table-only claim with fewer than :data:`MIN_SEEDS` seeds).

Claims whose runs the config did not run are rows with status ``not run (...)``, never a guess.
The table has ``mean ± std`` over seeds of each side and of ``d`` (std empty with one seed).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.io import FormatError

PARTS = ("spine", "multilabel", "osr")
KINDS = ("paired", "adversarial_drop", "spearman")
METRICS = ("AUROC", "FPR@95", "accuracy", "OSCR")
EXPECT = {"positive": 1, "negative": -1}
SCALES = ("embedded", "paper")
VERDICTS = ("holds", "contradicted", "inconclusive")
CLAIM_KEYS = ("id", "paper", "sentence", "part", "kind", "a", "b", "metric", "ood_set", "subset", "expect",
              "evidence", "scales")  # fmt: skip
REQUIRED = ("id", "paper", "sentence", "part", "a", "metric", "ood_set", "expect", "evidence", "scales")
#: Seeds from which the interval also resamples seeds.
MIN_SEEDS = 3
LEVEL = 0.95
COLUMNS = ("id", "kind", "paper", "claim", "evidence", "a", "b", "metric", "ood_set", "expect", "scale",
           "seeds", "a_mean", "a_std", "b_mean", "b_std", "diff", "diff_std", "lo", "hi", "verdict",
           "status")  # fmt: skip


@dataclass(frozen=True)
class Side:
    run: str
    score: str

    def describe(self) -> str:
        return self.run if self.score == "-" else f"{self.run} · {self.score}"


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    sentence: str
    part: str
    kind: str
    a: Side
    b: Side | None
    metric: str
    ood_set: str
    expect: str
    evidence: str
    scales: tuple[str, ...]
    tail_j: int | None = None
    relative: bool = False


# ---------------------------------------------------------------------------------- the registry
def _side(raw: Any, where: str) -> Side:
    if not isinstance(raw, Mapping) or set(raw) != {"run", "score"}:
        raise FormatError(f"{where}: expected {{run, score}}")
    if not all(isinstance(raw[k], str) and raw[k] for k in ("run", "score")):
        raise FormatError(f"{where}: run and score must be names")
    return Side(raw["run"], raw["score"])


def _claim(item: Any, where: str, papers: Mapping[str, str]) -> Claim:
    if not isinstance(item, Mapping):
        raise FormatError(f"{where}: expected a mapping")
    for key in item:
        if key not in CLAIM_KEYS:
            raise FormatError(f"{where}: unknown key '{key}'; valid: {', '.join(CLAIM_KEYS)}")
    for key in REQUIRED:
        if key not in item:
            raise FormatError(f"{where}: '{key}' is required")
    at = f"{where} ({item['id']})"
    for key in ("id", "sentence", "evidence", "ood_set"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise FormatError(f"{at}.{key}: required text")
    choices = {"paper": tuple(papers), "part": PARTS, "metric": METRICS, "expect": tuple(EXPECT),
               "kind": KINDS}  # fmt: skip
    kind = item.get("kind", "paired")
    for key, valid in choices.items():
        value = kind if key == "kind" else item[key]
        if value not in valid:
            raise FormatError(f"{at}.{key}: unknown '{value}'; valid: {', '.join(valid)}")
    scales = item["scales"]
    if not isinstance(scales, list) or not scales or not set(scales) <= set(SCALES):
        raise FormatError(f"{at}.scales: expected a non-empty list of {', '.join(SCALES)}")
    if (kind == "spearman") != ("b" not in item):
        raise FormatError(
            f"{at}.b: required for kind {kind}"
            if kind != "spearman"
            else f"{at}.b: a spearman claim has no b"
        )
    if item["metric"] == "OSCR" and item["part"] != "osr":
        raise FormatError(f"{at}.metric: OSCR needs part osr")
    if item["metric"] == "accuracy" and item["ood_set"] != "id":
        raise FormatError(f"{at}.ood_set: accuracy is measured on 'id'")
    subset = item.get("subset")
    tail_j, relative = None, False
    if subset is not None:
        if (
            not isinstance(subset, Mapping)
            or not set(subset) <= {"tail_j", "relative"}
            or "tail_j" not in subset
        ):
            raise FormatError(f"{at}.subset: expected {{tail_j: j, relative: true|false}}")
        tail_j, relative = subset["tail_j"], subset.get("relative", False)
        if (
            isinstance(tail_j, bool)
            or not isinstance(tail_j, int)
            or tail_j < 0
            or not isinstance(relative, bool)
        ):
            raise FormatError(f"{at}.subset: tail_j must be an integer >= 0 and relative true or false")
        if item["part"] != "multilabel" or kind != "paired":
            raise FormatError(f"{at}.subset: tail ID subsets are for paired multilabel claims")
    return Claim(
        item["id"], item["paper"], " ".join(item["sentence"].split()), item["part"], kind,
        _side(item["a"], f"{at}.a"), _side(item["b"], f"{at}.b") if "b" in item else None,
        item["metric"], item["ood_set"], item["expect"], item["evidence"].strip(), tuple(scales),
        tail_j, relative,
    )  # fmt: skip


def parse_claims(raw: Any, where: str = "claims") -> tuple[dict[str, str], list[Claim]]:
    """Validate the registry's content; returns ``(papers, claims)`` (errors name the claim and key)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("papers"), Mapping):
        raise FormatError(f"{where}: expected 'papers' (key -> title) and 'claims'")
    unknown = set(raw) - {"papers", "claims"}
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: papers, claims")
    papers = {str(k): str(v) for k, v in raw["papers"].items()}
    items = raw.get("claims")
    if not isinstance(items, list) or not items:
        raise FormatError(f"{where}.claims: expected a non-empty list")
    claims = [_claim(item, f"{where}.claims.{i}", papers) for i, item in enumerate(items)]
    seen: set[str] = set()
    for c in claims:
        if c.id in seen:
            raise FormatError(f"{where}.claims: id '{c.id}' appears twice")
        seen.add(c.id)
    return papers, claims


def load_claims(path: str | Path) -> tuple[dict[str, str], list[Claim]]:
    from oodflow.report.references import read_yaml

    path = Path(path)
    return parse_claims(read_yaml(path, "claims registry"), str(path))


# ---------------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Sample:
    """One side (run x score) on one test set: per-sample arrays, higher = more in-distribution.

    ``correct``: per ID image, whether the prediction is right (accuracy, OSCR); ``tail``: per ID
    image, whether it belongs to the claim's subset.
    """

    id: np.ndarray
    ood: Mapping[str, np.ndarray] = field(default_factory=dict)
    correct: np.ndarray | None = None
    tail: np.ndarray | None = None


def _weighted(s: Sample, metric: str, sets: Sequence[str], w: np.ndarray, vs: Mapping[str, np.ndarray]):
    """The metric per row of the ID weights ``w`` (B, n) and OOD weights ``vs[set]`` (B, m)."""
    from oodflow.bootstrap import weighted_auroc, weighted_fpr_at_95_tpr

    if metric == "accuracy":
        return (w * s.correct).sum(axis=1) / w.sum(axis=1)
    values = []
    for o in sets:
        if metric == "AUROC":
            values.append(weighted_auroc(s.id, s.ood[o], w, vs[o]))
        elif metric == "FPR@95":
            values.append(weighted_fpr_at_95_tpr(s.id, s.ood[o], w, vs[o]))
        else:  # OSCR: a curve over the resampled scores (small OSR test sets)
            from oodflow.osr.evaluate import oscr_curve

            values.append(np.array([
                oscr_curve(np.repeat(s.id, wb), np.repeat(s.correct, wb), np.repeat(s.ood[o], vb))[0]
                for wb, vb in zip(w.astype(np.int64), vs[o].astype(np.int64), strict=True)
            ]))  # fmt: skip
    return np.mean(values, axis=0)


def _check_pair(a: Sample, b: Sample, sets: Sequence[str]) -> None:
    if a.id.shape != b.id.shape or any(a.ood[o].shape != b.ood[o].shape for o in sets):
        raise ValueError("a paired comparison needs both sides scored on the same test images")


def paired_differences(
    a: Sample, b: Sample, metric: str, sets: Sequence[str], replicates: int, rng: np.random.Generator,
    relative: bool = False,
) -> tuple[float, float, float, np.ndarray]:  # fmt: skip
    """``(metric(a), metric(b), d, replicates of d)`` on one seed's test set, ``d = metric(a) - metric(b)``.

    With ``a.tail`` set, only the ID images in the subset count (their weights are masked); with
    ``relative``, ``d`` is the difference on the subset minus the difference on all ID images.
    """
    from oodflow.bootstrap import draw_weights

    _check_pair(a, b, sets)
    n = a.id.size
    w = draw_weights(n, replicates, rng)
    vs = {o: draw_weights(a.ood[o].size, replicates, rng) for o in sets}
    ones = np.ones((1, n))
    ones_v = {o: np.ones((1, a.ood[o].size)) for o in sets}

    def pair(w, vs):
        keep = w if a.tail is None else w * a.tail
        va, vb = _weighted(a, metric, sets, keep, vs), _weighted(b, metric, sets, keep, vs)
        d = va - vb
        if relative:
            d = d - (_weighted(a, metric, sets, w, vs) - _weighted(b, metric, sets, w, vs))
        return va, vb, d

    va, vb, d = pair(ones, ones_v)
    return float(va[0]), float(vb[0]), float(d[0]), pair(w, vs)[2]


def over_seeds(reps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replicates of the seed-mean difference from per-seed replicates ``reps`` (S, B): seeds are
    resampled with replacement per replicate when S >= :data:`MIN_SEEDS`, else averaged."""
    reps = np.atleast_2d(reps)
    seeds, b = reps.shape
    if seeds < MIN_SEEDS:
        return reps.mean(axis=0)
    pick = rng.integers(0, seeds, size=(b, seeds))
    return reps[pick, np.arange(b)[:, None]].mean(axis=1)


def interval(values: np.ndarray | None, level: float = LEVEL) -> tuple[float | None, float | None]:
    if values is None or len(values) == 0:
        return None, None
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def verdict(lo: float | None, hi: float | None, expect: str) -> str:
    """``holds`` / ``contradicted`` when the interval lies strictly on the predicted / the other side
    of 0, else ``inconclusive``."""
    if lo is None or hi is None:
        return "inconclusive"
    low, high = sorted((EXPECT[expect] * lo, EXPECT[expect] * hi))
    if low > 0:
        return "holds"
    if high < 0:
        return "contradicted"
    return "inconclusive"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else float("nan")


def summarise(
    claim: Claim, a: Sequence[float], b: Sequence[float], d: Sequence[float], reps: np.ndarray | None,
    scale: str, seeds_label: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A table row from per-seed values (``a``, ``b``, ``d``) and the interval's replicates."""
    lo, hi = interval(reps)
    row = _base(claim)
    row["a_mean"], row["a_std"] = _mean_std(a) if len(a) else (None, None)
    row["b_mean"], row["b_std"] = _mean_std(b) if len(b) else (None, None)
    row["diff"], row["diff_std"] = _mean_std(d)
    seeds = len(d)
    row.update(lo=lo, hi=hi, verdict=verdict(lo, hi, claim.expect), scale=scale, status="ok",
               seeds=seeds_label or f"{seeds} seed{'s' if seeds != 1 else ''}")  # fmt: skip
    return row


def _base(claim: Claim) -> dict[str, Any]:
    return {"id": claim.id, "kind": claim.kind, "paper": claim.paper, "claim": claim.sentence,
            "evidence": claim.evidence,
            "a": claim.a.describe(), "b": claim.b.describe() if claim.b else "", "metric": claim.metric,
            "ood_set": claim.ood_set, "expect": claim.expect, "scale": "", "seeds": "",
            **dict.fromkeys(("a_mean", "a_std", "b_mean", "b_std", "diff", "diff_std", "lo", "hi")),
            "verdict": "", "status": ""}  # fmt: skip


def not_run(claim: Claim, why: str) -> dict[str, Any]:
    return {**_base(claim), "status": f"not run ({why})"}


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks on ties); nan when either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


# ---------------------------------------------------------------------------------- formats
def _num(value: float | None, scale: float = 100.0, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{scale * value:+.2f}" if signed else f"{scale * value:.2f}"


def _unit(row: Mapping[str, Any]) -> float:
    """Differences and metrics in % points, a Spearman correlation as it is."""
    return 1.0 if row["kind"] == "spearman" else 100.0


def _csv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Fractions (and correlations) as stored, 6 decimals; empty cells for what was not measured."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_csv_cell(r[c]) for c in COLUMNS])
    return buf.getvalue()


def _cell(r: Mapping[str, Any], side: str, unit: float) -> str:
    mean, std = r[f"{side}_mean"], r[f"{side}_std"]
    spread = _num(std, unit)
    return (_num(mean, unit) + (f" ± {spread}" if spread else "")) or "–"


def to_markdown(
    rows: Sequence[Mapping[str, Any]], papers: Mapping[str, str], header: str | None = None
) -> str:
    """One table: claim, paper's evidence, ours (a, b, d: mean ± std over seeds, in % points), the 95 %
    interval of d, the verdict with the scale and seeds it rests on."""
    lines = [header or "# Claims", "",
             "Each paper's qualitative finding as a comparison on the benchmark this config ran: "
             "d = metric(a) − metric(b) in % points (a Spearman correlation as it is), mean ± std over "
             "seeds, and a 95 % paired-bootstrap interval over the test samples (and over seeds where ≥ "
             f"{MIN_SEEDS} ran). Verdict: `holds` / `contradicted` when the interval lies on the "
             "predicted / the other side of 0, `inconclusive` when it spans 0. `not run`: the config has "
             "no such run. Small-scale verdicts say what happens at that scale, not whether the paper "
             "is right.", "",
             "| Paper | Claim | Paper's evidence | a vs b | Metric (set) | Predicted | Ours: a | Ours: b | "
             "d | 95 % interval | Verdict | Scale, seeds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        unit = _unit(r)
        lo, hi = _num(r["lo"], unit, True), _num(r["hi"], unit, True)
        span = f"[{lo}, {hi}]" if lo else "–"
        diff = _num(r["diff"], unit, True)
        if diff and _num(r["diff_std"], unit):
            diff += f" ± {_num(r['diff_std'], unit)}"
        judged = r["verdict"] or r["status"]
        where = f"{r['scale']}, {r['seeds']}" if r["scale"] else "–"
        lines.append(
            f"| {papers.get(r['paper'], r['paper']).split(' (')[0]} | {r['claim']} | {r['evidence']} | "
            f"{r['a']}{' vs ' + r['b'] if r['b'] else ''} | {r['metric']} ({r['ood_set']}) | "
            f"{'d > 0' if r['expect'] == 'positive' else 'd < 0'} | {_cell(r, 'a', unit)} | "
            f"{_cell(r, 'b', unit)} | {diff or '–'} | {span} | {judged} | {where} |"
        )
    return "\n".join(lines) + "\n"


def docs_page(rows: Sequence[Mapping[str, Any]], papers: Mapping[str, str], date: str, commit: str,
              config: str) -> str:  # fmt: skip
    """``docs/claims.md``: the claims table with the date, commit and config it came from, and a summary
    of which claims hold."""
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    missing = sum(not r["verdict"] for r in rows)
    head = (f"# Claims at small scale\n\nGenerated {date} from commit `{commit}` by `python -m "
            f"oodflow.report.claims docs` on the results of `{config}`. {counts['holds']} hold, "
            f"{counts['contradicted']} are contradicted, {counts['inconclusive']} are inconclusive, "
            f"{missing} were not run.")  # fmt: skip
    return to_markdown(rows, papers, header=head)


def forest_figure(rows: Sequence[Mapping[str, Any]], out: str, dpi: int = 120) -> None:
    """One row per measured claim: d with its 95 % interval, coloured by verdict (% points; Spearman
    correlations ×100)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oodflow.report.figures import _save

    measured = [r for r in rows if r["verdict"]][::-1]
    colours = {"holds": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:gray"}
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.25 * max(len(measured), 1)))
    for y, r in enumerate(measured):
        ax.plot([100 * r["diff"]], [y], "o", color=colours[r["verdict"]], markersize=4)
        if r["lo"] is not None:
            ax.hlines(y, 100 * r["lo"], 100 * r["hi"], colors=colours[r["verdict"]], linewidth=1.5)
    ax.axvline(0.0, color="black", linewidth=0.6)
    labels = [f"{r['id']} ({'+' if r['expect'] == 'positive' else '−'} predicted)" for r in measured]
    ax.set_yticks(range(len(measured)), labels, fontsize=7)
    ax.set_ylim(-0.7, max(len(measured), 1) - 0.3)
    ax.set_xlabel("d = metric(a) − metric(b), % points, 95 % interval")
    handles = [plt.Line2D([], [], color=c, marker="o", linewidth=1.5) for c in colours.values()]
    ax.legend(handles, list(colours), fontsize=7, loc="best")
    ax.set_title("Papers' claims on this benchmark")
    fig.tight_layout()
    _save(fig, out, dpi)


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a claims CSV (as :func:`to_csv` writes them; numbers back to floats)."""
    numeric = {"a_mean", "a_std", "b_mean", "b_std", "diff", "diff_std", "lo", "hi"}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise FormatError(
                f"{path}: not a claims table (columns {reader.fieldnames}, expected {list(COLUMNS)})"
            )
        return [
            {k: (float(v) if v else None) if k in numeric else v for k, v in row.items()} for row in reader
        ]


def _commit(repo: Path) -> str:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout

    dirty = (
        " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no").strip() else ""
    )
    return git("rev-parse", "--short=12", "HEAD").strip() + dirty


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m oodflow.report.claims docs [--table CSV] [--out docs/claims.md] [--config NAME]``:
    ``docs/claims.md`` from a built claims table, with today's date (UTC) and this checkout's commit."""
    import argparse
    import datetime

    root = Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(prog="python -m oodflow.report.claims")
    parser.add_argument("command", choices=["docs"])
    parser.add_argument("--table", default="results/summary/tables/claims.csv")
    parser.add_argument("--out", default="docs/claims.md")
    parser.add_argument("--config", default="config/claims.yaml", help="the config the table came from")
    parser.add_argument("--registry", default=str(root / "config/papers/references/claims.yaml"))
    args = parser.parse_args(argv)
    from oodflow.io import write_text

    papers, _ = load_claims(args.registry)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    write_text(args.out, docs_page(read_csv(args.table), papers, date, _commit(root), args.config))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
