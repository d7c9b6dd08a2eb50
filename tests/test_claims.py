"""Claims, not deltas: the registry, the paired bootstrap, verdicts and the claims table."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from oodflow.io import FormatError, save_npz
from oodflow.report import claims as cl
from oodflow.report import claims_data as cd

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "config" / "papers" / "references" / "claims.yaml"


def test_registry_loads_and_holds_the_issues_claims():
    papers, claims = cl.load_claims(REGISTRY)
    ids = {c.id for c in claims}
    assert set(papers) == {"food101", "aoe", "dias", "adapt", "edge"}
    for needed in ("food101-ft-accuracy", "food101-ft-fpr", "food101-cores-textures",
                   "food101-ft-vs-cores-near", "aoe-eba-vs-oe", "aoe-adversarial-drop",
                   "dias-vs-arpl_cs-auroc", "arpl_cs-vs-arpl-oscr", "dias-vs-arpl-oscr",
                   "arpl-vs-softmax-auroc", "adapt-vs-palm-fpr-maha", "adapt-vs-palm-auroc-knn",
                   "edge-vs-bce-fpr", "edge-vs-oe-auroc", "edge-tail-gap", "edge-oe-selection"):  # fmt: skip
        assert needed in ids, needed


@pytest.mark.parametrize(
    "mutate, words",
    [
        (
            lambda c: c.update(metric="accuracy!"),
            r"claims.0 \(food101-ft-accuracy\).metric: unknown 'accuracy!'",
        ),
        (
            lambda c: c.update(expect="up"),
            r"\(food101-ft-accuracy\).expect: unknown 'up'; valid: positive, negative",
        ),
        (lambda c: c.update(paper="nope"), r"\.paper: unknown 'nope'"),
        (lambda c: c.pop("sentence"), r"claims.0: 'sentence' is required"),
        (lambda c: c.update(colour="red"), r"claims.0: unknown key 'colour'"),
        (lambda c: c["a"].pop("score"), r"\(food101-ft-accuracy\).a: expected \{run, score\}"),
        (lambda c: c.update(scales=["huge"]), r"\.scales: expected a non-empty list"),
        (lambda c: c.update(ood_set="textures"), r"\.ood_set: accuracy is measured on 'id'"),
        (lambda c: c.update(subset={"tail_j": 1}), r"\.subset: tail ID subsets are for paired multilabel"),
    ],
)
def test_bad_registry_entries_name_the_claim_and_key(mutate, words):
    raw = yaml.safe_load(REGISTRY.read_text())
    mutate(raw["claims"][0])
    with pytest.raises(FormatError, match=words):
        cl.parse_claims(raw)


def test_duplicate_ids_are_an_error():
    raw = yaml.safe_load(REGISTRY.read_text())
    raw["claims"].append(copy.deepcopy(raw["claims"][0]))
    with pytest.raises(FormatError, match="id 'food101-ft-accuracy' appears twice"):
        cl.parse_claims(raw)


# ---------------------------------------------------------------------------- closed-form cases
RNG = np.random.default_rng(7)
ID = RNG.normal(size=200)
OOD = {"x": RNG.normal(size=150), "y": RNG.normal(size=120)}


def _perfect(sign: float) -> cl.Sample:
    """Every ID score above (sign +1) or below (-1) every OOD score: AUROC 1 (or 0) in every resample."""
    return cl.Sample(np.abs(ID) * sign + sign * 10, {k: -sign * (np.abs(v) + 10) for k, v in OOD.items()})


@pytest.mark.parametrize("metric, value", [("AUROC", 1.0), ("FPR@95", -1.0)])
def test_a_constant_difference_gives_a_degenerate_interval_at_it(metric, value):
    good, bad = _perfect(+1), _perfect(-1)
    a, b, d, reps = cl.paired_differences(good, bad, metric, ["x", "y"], 100, np.random.default_rng(0))
    assert d == value and np.all(reps == value)
    lo, hi = cl.interval(reps)
    assert lo == hi == value
    expect = "positive" if metric == "AUROC" else "negative"
    assert cl.verdict(lo, hi, expect) == "holds"
    flipped = "negative" if expect == "positive" else "positive"
    assert cl.verdict(lo, hi, flipped) == "contradicted"  # a sign flip contradicts


def test_identical_runs_are_inconclusive():
    same = cl.Sample(ID, OOD)
    _, _, d, reps = cl.paired_differences(same, same, "AUROC", ["x", "y"], 50, np.random.default_rng(1))
    assert d == 0 and np.all(reps == 0)
    assert cl.verdict(*cl.interval(reps), "positive") == "inconclusive"


def test_accuracy_difference_is_the_share_of_images_only_a_gets_right():
    n = 400
    right_a = np.ones(n, bool)
    right_b = np.arange(n) % 4 != 0  # 75 %
    a, b = cl.Sample(np.zeros(n), {}, right_a), cl.Sample(np.zeros(n), {}, right_b)
    va, vb, d, reps = cl.paired_differences(a, b, "accuracy", [], 300, np.random.default_rng(2))
    assert (va, vb, d) == (1.0, 0.75, 0.25)
    # the paired resample: d = share of drawn images in b's wrong quarter, a binomial proportion
    assert abs(reps.mean() - 0.25) < 0.01 and abs(reps.std() - np.sqrt(0.25 * 0.75 / n)) < 0.004


def test_paired_replicates_match_an_explicit_resample_scored_with_sklearn():
    """Each replicate is one resample of the images shared by both runs: re-draw the same indices
    (ID first, then each OOD set, as documented) and score them with sklearn."""
    a = cl.Sample(ID, OOD)
    b = cl.Sample(ID + RNG.normal(scale=0.5, size=ID.size), {k: v + 0.3 for k, v in OOD.items()})
    _, _, d, reps = cl.paired_differences(a, b, "AUROC", ["x", "y"], 5, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    i = rng.integers(0, ID.size, size=(5, ID.size))
    j = {k: rng.integers(0, v.size, size=(5, v.size)) for k, v in OOD.items()}

    def auc(s, r):
        return np.mean([roc_auc_score(np.r_[np.ones(ID.size), np.zeros(OOD[k].size)],
                                      np.r_[s.id[i[r]], s.ood[k][j[k][r]]]) for k in OOD])  # fmt: skip

    expected = [auc(a, r) - auc(b, r) for r in range(5)]
    np.testing.assert_allclose(reps, expected, rtol=1e-12)
    whole = np.mean(
        [roc_auc_score(np.r_[np.ones(ID.size), np.zeros(v.size)], np.r_[a.id, v]) for v in OOD.values()]
    )
    whole -= np.mean([roc_auc_score(np.r_[np.ones(ID.size), np.zeros(v.size)], np.r_[b.id, b.ood[k]])
                      for k, v in OOD.items()])  # fmt: skip
    assert d == pytest.approx(whole)


def test_tail_subset_and_relative_difference():
    """On the subset a separates perfectly and b not at all (AUROC 1 vs 0.5 with ties); elsewhere the two
    agree, so the relative difference is (1 - 0.5) minus the all-images difference."""
    n, m = 100, 80
    tail = np.arange(n) < 40
    ood = {"x": np.zeros(m)}
    a = cl.Sample(np.where(tail, 1.0, -1.0), ood, None, tail)
    b = cl.Sample(np.where(tail, 0.0, -1.0), ood, None, tail)
    _, _, d, _ = cl.paired_differences(a, b, "AUROC", ["x"], 10, np.random.default_rng(4))
    assert d == 0.5
    _, _, rel, _ = cl.paired_differences(a, b, "AUROC", ["x"], 10, np.random.default_rng(4), relative=True)
    assert rel == pytest.approx(0.5 - 0.4 * 0.5)  # all images: a - b = 0.4 x (1 - 0.5)


def test_seeds_are_resampled_from_three_on():
    per_seed = np.array([[0.1] * 200, [0.2] * 200, [0.6] * 200])
    got = cl.over_seeds(per_seed, np.random.default_rng(5))
    assert got.min() >= 0.1 and got.max() <= 0.6 and len(set(got.round(6))) > 3  # seeds resampled
    assert np.all(cl.over_seeds(per_seed[:2], np.random.default_rng(5)) == pytest.approx(0.15))  # averaged


def test_spearman_of_a_monotone_relation():
    assert cl.spearman([1, 2, 3, 4], [0.1, 0.5, 0.6, 0.9]) == pytest.approx(1.0)
    assert cl.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(cl.spearman([1, 2, 3], [1, 1, 1]))


# ---------------------------------------------------------------------------- table from results
def _config(seeds=(0,)):
    """A validated-looking config: two spine runs per seed, scores msp and energy, OOD sets x and y."""
    runs = {}
    for s in seeds:
        runs[f"base-s{s}"] = {"seed": s, "scores": None}
        runs[f"ft-s{s}"] = {"seed": s, "scores": None}
    return {"seed": 0, "runs": runs, "scores": {"msp": {}, "energy": {}}, "name": "synth",
            "benchmark": {"name": "mnist5k", "ood_sets": ["x", "y"]},
            "report": {"bootstrap": 200}}  # fmt: skip


def _entry(id, sentence, a, b, metric, ood_set, evidence, scales=("embedded",)):
    return {"id": id, "paper": "p", "sentence": sentence, "part": "spine", "a": {"run": a[0], "score": a[1]},
            "b": {"run": b[0], "score": b[1]}, "metric": metric, "ood_set": ood_set, "expect": "positive",
            "evidence": evidence, "scales": list(scales)}  # fmt: skip


def _claims():
    return cl.parse_claims({"papers": {"p": "Paper P (2020)"}, "claims": [
        _entry("better", "ft beats base.", ("ft", "energy"), ("base", "energy"), "AUROC", "mean", "90 vs 80"),
        _entry("each", "ft lowers FPR.", ("ft", "energy"), ("base", "energy"), "FPR@95", "every", "10 vs 20"),
        _entry("absent", "gone beats base.", ("gone", "msp"), ("base", "msp"), "AUROC", "x", "-", ["paper"]),
    ]})  # fmt: skip


def _write_results(tmp_path, seeds):
    for s in seeds:
        good, bad = _perfect(+1), _perfect(-1)
        for run, sample in ((f"ft-s{s}", good), (f"base-s{s}", bad)):
            save_npz(tmp_path / f"results/synth/scores/{run}/energy.npz", id=sample.id, **sample.ood)


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_claims_table_from_synthetic_results(tmp_path, seeds):
    config = _config(seeds)
    papers, claims = _claims()
    _write_results(tmp_path, seeds)
    assert cd.files(config, claims) == sorted(
        f"results/synth/scores/{r}-s{s}/energy.npz" for s in seeds for r in ("ft", "base")
    )
    rows = cd.evaluate(config, claims, tmp_path)
    by_id = {r["id"]: r for r in rows}
    assert list(by_id) == ["better", "each/x", "each/y", "absent"]
    better = by_id["better"]
    assert (better["diff"], better["lo"], better["hi"], better["verdict"]) == (1.0, 1.0, 1.0, "holds")
    assert (
        better["a_mean"] == 1.0
        and better["b_mean"] == 0.0
        and better["seeds"] == f"{len(seeds)} seed" + ("s" if len(seeds) > 1 else "")
    )
    assert (better["diff_std"] == 0.0) if len(seeds) > 1 else np.isnan(better["diff_std"])
    # FPR falls by 1 but the registry predicted a rise: contradicted on each set
    assert [by_id[k]["verdict"] for k in ("each/x", "each/y")] == ["contradicted"] * 2
    assert by_id["absent"]["status"] == "not run (no run gone)" and by_id["absent"]["verdict"] == ""
    text = cl.to_csv(rows)
    assert text.splitlines()[0] == ",".join(cl.COLUMNS)
    path = tmp_path / "claims.csv"
    path.write_text(text)
    back = cl.read_csv(path)
    assert [r["verdict"] for r in back] == [r["verdict"] for r in rows] and back[0]["diff"] == 1.0
    md = cl.to_markdown(rows, papers)
    assert (
        "| Paper P | ft beats base. | 90 vs 80 | ft · energy vs base · energy | AUROC (mean) | d > 0 | 100.00"
        in md
    )
    assert "| [+100.00, +100.00] | holds | embedded, " in md and "not run (no run gone)" in md
    page = cl.docs_page(rows, papers, "2026-01-01", "abc123", "config/claims.yaml")
    assert "Generated 2026-01-01 from commit `abc123`" in page and "1 hold, 2 are contradicted" in page


def test_forest_figure_is_deterministic(tmp_path):
    config = _config()
    papers, claims = _claims()
    _write_results(tmp_path, (0,))
    rows = cd.evaluate(config, claims, tmp_path)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cl.forest_figure(rows, str(a), dpi=50)
    cl.forest_figure(rows, str(b), dpi=50)
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and a.read_bytes() == b.read_bytes()


def test_the_default_configs_claims_map_to_its_runs():
    """Every claim either finds its runs in the embedded default or says why not (ARPL+CS and the
    per-candidate OE runs are not part of it)."""
    from oodflow.config import validate

    config = validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    _, claims = cl.load_claims(REGISTRY)
    missing = {c.id: cd.units(config, c) for c in claims if isinstance(cd.units(config, c), str)}
    assert set(missing) == {"dias-vs-arpl_cs-auroc", "dias-vs-arpl_cs-oscr", "arpl_cs-vs-arpl-auroc",
                            "arpl_cs-vs-arpl-oscr", "edge-oe-selection"}  # fmt: skip
    files = cd.files(config, claims)
    assert "results/mnist5k/scores/baseline/cores.npz" in files
    assert "results/osr/F1/mnist5k/trial0/dias/cache.npz" in files
    assert "results/mnist5k-ml/features/edge/test.npz" in files  # the tail subset's targets
    assert "results/mnist5k/tables/adversarial.csv" in files


def test_unpaired_score_files_are_an_error_naming_the_claim(tmp_path):
    config = _config()
    _, claims = _claims()
    _write_results(tmp_path, (0,))
    save_npz(tmp_path / "results/synth/scores/base-s0/energy.npz", id=ID[:10], x=OOD["x"], y=OOD["y"])
    with pytest.raises(ValueError, match=r"claim better \(seed 0, ft-s0 vs base-s0\): .*same test images"):
        cd.evaluate(config, claims[:1], tmp_path)


def test_docs_cli_writes_the_table_with_date_and_commit(tmp_path):
    import subprocess

    config = _config()
    papers, claims = _claims()
    _write_results(tmp_path, (0,))
    table = tmp_path / "claims.csv"
    table.write_text(cl.to_csv(cd.evaluate(config, claims, tmp_path)))
    out = tmp_path / "claims.md"
    registry = tmp_path / "registry.yaml"
    entry = _entry("x", "s", ("a", "-"), ("b", "-"), "accuracy", "id", "e")
    registry.write_text(yaml.safe_dump({"papers": papers, "claims": [entry]}))
    assert cl.main(["docs", "--table", str(table), "--out", str(out), "--registry", str(registry)]) == 0
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    text = out.read_text()
    assert f"from commit `{head}" in text and "on the results of `config/claims.yaml`" in text
    assert "1 hold, 2 are contradicted, 0 are inconclusive, 1 were not run." in text
    assert "| Paper P | ft beats base. | 90 vs 80 |" in text


def _raw(id, part, a, b, metric, ood_set, **extra):
    claim = {"id": id, "paper": "p", "sentence": "s", "part": part, "metric": metric, "ood_set": ood_set,
             "a": {"run": a[0], "score": a[1]}, "b": {"run": b[0], "score": b[1]}, "expect": "positive",
             "evidence": "e", "scales": ["embedded"], **extra}  # fmt: skip
    return claim


def test_osr_claims_pair_methods_per_trial_under_their_protocol_scores(tmp_path):
    """Each trial's caches give the methods' protocol scores (softmax: MSP; ARPL: max logit); trials count
    as seeds. Here ARPL's max logit ranks every known image above every unknown one and softmax's MSP
    the reverse, so the AUROC difference is 1 in every resample."""
    from oodflow.osr.evaluate import oscr_curve

    config = {"seed": 0, "runs": {}, "report": {"bootstrap": 50},
              "osr": {"name": "o", "splits": ["F1"], "datasets": ["mnist5k"], "trials": [0, 1, 2],
                      "methods": {"softmax": {}, "arpl": {}}}}  # fmt: skip
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    peaked = np.eye(3)[np.arange(20) % 3] * 8  # softmax: MSP near 1 on every unknown, 1/3 on every known
    for t in range(3):
        known = np.eye(3)[labels] * 5 + rng.normal(size=(30, 3))
        root = tmp_path / f"results/o/F1/mnist5k/trial{t}"
        arpl = {
            "known_logits": known + 10,
            "known_labels": labels,
            "unknown_logits": rng.normal(size=(20, 3)),
        }
        save_npz(root / "arpl/cache.npz", **arpl)
        save_npz(root / "softmax/cache.npz", known_logits=np.zeros((30, 3)), known_labels=labels,
                 unknown_logits=peaked)  # fmt: skip
    sides = (("arpl", "protocol"), ("softmax", "protocol"))
    raw = {
        "papers": {"p": "P"},
        "claims": [_raw(f"arpl-{m}", "osr", *sides, m, "unknown") for m in ("AUROC", "OSCR")],
    }
    _, claims = cl.parse_claims(raw)
    assert cd.files(config, claims) == sorted(
        f"results/o/F1/mnist5k/trial{t}/{m}/cache.npz" for t in range(3) for m in ("arpl", "softmax")
    )
    auroc, oscr = cd.evaluate(config, claims, tmp_path)
    assert (auroc["diff"], auroc["lo"], auroc["hi"], auroc["verdict"]) == (1.0, 1.0, 1.0, "holds")
    assert auroc["seeds"] == "3 trials" and auroc["scale"] == "embedded" and oscr["verdict"] == "holds"
    # ARPL's OSCR on trial 0 alone, re-derived from the cache with its max logit
    arrays = np.load(tmp_path / "results/o/F1/mnist5k/trial0/arpl/cache.npz")
    k = arrays["known_logits"]
    expected = oscr_curve(k.max(1), k.argmax(1) == arrays["known_labels"], arrays["unknown_logits"].max(1))[0]
    single = cd.evaluate({**config, "osr": {**config["osr"], "trials": [0]}}, claims[1:], tmp_path)[0]
    assert single["a_mean"] == pytest.approx(expected) and single["seeds"] == "1 trial"


def test_multilabel_tail_subset_reads_the_test_targets(tmp_path):
    """EDGE's tail ID: images without the most frequent label. a separates its tail images perfectly, b
    does not; the relative claim is the tail difference minus the all-images difference."""
    ml = {"benchmark": {"name": "mnist5k-ml", "ood_sets": ["x"]}, "runs": {"e": {}, "b": {}},
          "scores": {"joint_energy": {}}, "tail": {"rank_by": "test"}}  # fmt: skip
    config = {"seed": 0, "runs": {}, "report": {"bootstrap": 20}, "multilabel": ml}
    n = 50
    targets = np.zeros((n, 3), np.int64)
    targets[:30, 0] = 1  # label 0 is the head label; images 30..49 are the tail (j = 1)
    targets[30:, 1] = 1
    tail = targets[:, 0] == 0
    root = tmp_path / "results/mnist5k-ml"
    for run, ids in (("e", np.where(tail, 2.0, -1.0)), ("b", np.where(tail, 0.0, -1.0))):
        save_npz(root / f"scores/{run}/joint_energy.npz", id=ids, x=np.zeros(40))
        save_npz(root / f"features/{run}/test.npz", targets=targets)
    sides = (("e", "joint_energy"), ("b", "joint_energy"))
    raw = {"papers": {"p": "P"}, "claims": [
        _raw(f"gap-{rel}", "multilabel", *sides, "AUROC", "mean", subset={"tail_j": 1, "relative": rel})
        for rel in (False, True)]}  # fmt: skip
    _, claims = cl.parse_claims(raw)
    assert "results/mnist5k-ml/features/e/test.npz" in cd.files(config, claims)
    plain, relative = cd.evaluate(config, claims, tmp_path)
    assert plain["diff"] == 0.5  # tail: 1 vs 0.5 (ties with the OOD zeros)
    assert relative["diff"] == pytest.approx(0.5 - 0.4 * 0.5)  # all images: 20 of 50 differ by 0.5
