"""End to end: the tiny DAG through Snakemake (and DVC), as a user runs it.

One module-scoped run serves several tests; a second clean run checks byte-identical metrics.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from oodflow.io import load_npz
from workflow_runner import snakemake

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"
OUT = Path("results/mnist5k")

pytestmark = pytest.mark.e2e


def run_tiny(workdir: Path, config: Path = TEST_CONFIG) -> subprocess.CompletedProcess:
    return snakemake(workdir, "--configfile", str(config))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny")
    run_tiny(workdir)
    return workdir


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    from oodflow.config import validate

    return validate(yaml.safe_load(TEST_CONFIG.read_text()))


def test_dag_writes_tables_and_figures(tiny_run, tiny_config):
    out = tiny_run / OUT
    runs, scores, oods = (
        list(tiny_config["runs"]),
        list(tiny_config["scores"]),
        tiny_config["benchmark"]["ood_sets"],
    )
    run_scores = {r: spec.get("scores") or scores for r, spec in tiny_config["runs"].items()}
    frame = pd.read_csv(out / "tables" / "metrics.csv")
    assert len(frame) == sum(1 + len(run_scores[r]) * len(oods) * 4 for r in runs)
    assert set(frame.metric) == {"accuracy", "AUROC", "AUPR-In", "AUPR-Out", "FPR@95"}
    assert frame.value.between(0, 1).all()
    md = (out / "tables" / "fpr95_auroc.md").read_text()
    tex = (out / "tables" / "fpr95_auroc.tex").read_text()
    for name in [*oods, "Average", *scores]:
        assert name in md and name in tex
    assert "\\begin{tabular}" in tex and "\\textbf{" in tex
    for run in runs:
        for score in run_scores[run]:
            for kind in ("hist", "roc"):
                png = out / "figures" / run / f"{kind}_{score}.png"
                assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = yaml.safe_load((out / "data" / "manifest.json").read_text())
    assert len(manifest["files"]) == 3 + len(oods) + 1
    # no resume checkpoint is left behind once training has finished
    assert not list((out / "runs").rglob("checkpoint-last.pt"))


def test_feature_cache_and_scores_agree(tiny_run, tiny_config):
    out = tiny_run / OUT
    run = next(iter(tiny_config["runs"]))
    test = load_npz(out / "features" / run / "test.npz")
    msp = load_npz(out / "scores" / run / "msp.npz")
    logits = test["logits"].astype("float64")
    expected = 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)  # max softmax
    np.testing.assert_allclose(msp["id"], expected, rtol=1e-6)
    assert len(test["labels"]) == len(msp["id"]) == len(test["features"])
    assert set(msp) == {"id", *tiny_config["benchmark"]["ood_sets"]}


def test_report_holds_every_table_and_figure_by_category(tiny_run, tiny_config):
    """`snakemake --report` writes one self-contained HTML file with the tables (as HTML pages) and the
    figures of the run, in the categories of the papers."""
    snakemake(tiny_run, "--configfile", str(TEST_CONFIG), "--report", "report.html")
    report = (tiny_run / "report.html").read_text()
    assert "<html" in report[:2000].lower()
    page = (tiny_run / "results" / "report" / "mnist5k" / "fpr95_auroc.html").read_text()
    assert "<table>" in page and "<th>Average</th>" in page
    files = ("fpr95_auroc.html", "cross_paper.html", "cross_paper_ranking.png", "data_samples.png",
             "claims.html", "claims_forest.png")  # fmt: skip
    categories = ("1 Post-hoc scores (all runs)", "7 Cross-paper table and reproduction scorecard")
    for needle in (*files, *categories):
        assert needle in report, needle
    card = (tiny_run / "results" / "summary" / "tables" / "scorecard.md").read_text()
    assert "not retrieved" in card and "not run (no results/food101)" in card and "scorecard.html" in report
    run = next(iter(tiny_config["runs"]))
    assert f"hist_{next(iter(tiny_config['scores']))}.png" in report and run in report


def test_dag_writes_the_claims_table(tiny_run, tiny_config):
    """The tiny DAG writes the claims table (the tiny runs match no claim: every row says why), its
    forest plot and HTML page, and the scorecard ends with it; the library measures a claim on the
    tiny runs' real score files, and each side's metric is the AUROC of the metrics table."""
    from oodflow.report import claims as cl
    from oodflow.report import claims_data as cd

    summary = tiny_run / "results" / "summary"
    rows = cl.read_csv(summary / "tables" / "claims.csv")
    _, registry = cl.load_claims(ROOT / "config" / "papers" / "references" / "claims.yaml")
    assert [r["id"] for r in rows] == [c.id for c in registry]
    assert {"verdict", "lo", "hi", "seeds", "scale"} <= set(rows[0])
    assert all(r["status"].startswith("not run (") and r["verdict"] == "" for r in rows)
    assert (summary / "figures" / "claims_forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in (tiny_run / "results" / "report" / "summary" / "claims.html").read_text()
    assert "## Claims on this config's benchmarks" in (summary / "tables" / "scorecard.md").read_text()

    claim = {"id": "arpl-vs-ce", "paper": "p", "sentence": "s", "part": "spine", "metric": "AUROC",
             "a": {"run": "tiny_arpl", "score": "msp"}, "b": {"run": "tiny", "score": "msp"},
             "ood_set": "mean", "expect": "positive", "evidence": "e", "scales": ["embedded"]}  # fmt: skip
    _, claims = cl.parse_claims({"papers": {"p": "P"}, "claims": [claim]})
    (row,) = cd.evaluate(tiny_config, claims, tiny_run)
    assert row["verdict"] in cl.VERDICTS and row["seeds"] == "1 seed" and row["scale"] == "embedded"
    assert row["lo"] <= row["hi"]
    frame = pd.read_csv(tiny_run / OUT / "tables" / "metrics.csv")
    auroc = frame[(frame.score == "msp") & (frame.metric == "AUROC")].groupby("run").value.mean()
    assert row["a_mean"] == pytest.approx(auroc["tiny_arpl"])
    assert row["b_mean"] == pytest.approx(auroc["tiny"])
    assert row["diff"] == pytest.approx(auroc["tiny_arpl"] - auroc["tiny"])


def test_scorecard_picks_up_paper_scale_results_left_in_the_workspace(tiny_run, tmp_path):
    """A paper config's metrics table (here a stand-in for results/food101) fills the scorecard's paper
    rows on the next run, with the delta to the reported number."""
    work = tmp_path / "w"
    shutil.copytree(tiny_run, work, symlinks=True)
    table = work / "results" / "food101" / "tables" / "metrics.csv"
    table.parent.mkdir(parents=True)
    table.write_text("benchmark,run,model,method,score,ood_set,metric,value\n"
                     "food101,baseline,mobilenet_v3_large,ce,-,id,accuracy,0.7000\n")  # fmt: skip
    plan = snakemake(work, "--configfile", str(TEST_CONFIG), "--dry-run").stdout
    assert "rule scorecard:" in plan and "rule train:" not in plan
    snakemake(work, "--configfile", str(TEST_CONFIG))
    card = (work / "results" / "summary" / "tables" / "scorecard.csv").read_text()
    assert (
        "food101,Food-101 top-1 accuracy, cross-entropy baseline,paper,67.56,70.00,+2.44,ok,"
        in card.replace('"', "")
    )


def test_noop_rerun_does_nothing(tiny_run):
    proc = run_tiny(tiny_run)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_new_ood_set_reuses_the_trained_model(tiny_run, tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["benchmark"]["ood_sets"].append("faces")
    path = tmp_path / "more.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = snakemake(tiny_run, "--configfile", str(path), "--dry-run").stdout
    jobs = set(re.findall(r"^(?:local)?rule (\w+):", plan, flags=re.MULTILINE))
    assert {"build_ood", "extract_features", "posthoc_scores", "score"} <= jobs
    assert not jobs & {"train", "build_id"}


def test_ood_draw_protocol_reuses_scores_and_records_subsets(tiny_run, tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["evaluation"] = {"ood_per_id": 0.2, "draws": 3}
    path = tmp_path / "draws.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = snakemake(tiny_run, "--configfile", str(path), "--dry-run").stdout
    # the metrics and what is made of them (tables with their HTML pages, headline, scorecard), nothing else
    assert set(re.findall(r"^(?:local)?rule (\w+):", plan, flags=re.MULTILINE)) == {
        "evaluate",
        "tables",
        "headline_spine",
        "scorecard",
        "all",
    }
    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work)
    snakemake(work, "--configfile", str(path))
    draws = load_npz(work / OUT / "tables" / "ood_draws.npz")
    n_id = len(load_npz(work / OUT / "scores" / "tiny" / "msp.npz")["id"])
    assert set(draws) == set(config["benchmark"]["ood_sets"])
    assert all(d.shape == (3, n_id // 5) for d in draws.values())
    assert (work / OUT / "tables" / "metrics.csv").read_bytes() != (
        tiny_run / OUT / "tables" / "metrics.csv"
    ).read_bytes()


def test_two_clean_runs_give_identical_bytes(tiny_run, tmp_path):
    run_tiny(tmp_path)
    for rel in ["tables/metrics.csv", "metrics.json", "tables/fpr95_auroc.md", "data/manifest.json"]:
        assert (tmp_path / OUT / rel).read_bytes() == (tiny_run / OUT / rel).read_bytes(), rel
    for a in sorted((tiny_run / OUT).rglob("*.npz")):
        b = tmp_path / a.relative_to(tiny_run)
        assert a.read_bytes() == b.read_bytes(), a


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["scores"].update(nonsense={}), "scores.nonsense"),
        (lambda c: c["runs"]["tiny"].update(epochs=-3), "runs.tiny.epochs"),
        (lambda c: c["runs"]["tiny"].update(batch_size="big"), "runs.tiny.batch_size"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, edit, key):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert f"config error at {key}" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "where, text, words",
    [
        ("--configfile", "dup: 1\ndup: 2\n", ":{n2}:1: not valid YAML: found the key 'dup' a second time"),
        ("default", "seed: 1\nbenchmark:\n\tname: mnist5k\n", ":3:1: not valid YAML:"),
        ("default", "dup: 1\ndup: 2\n", ":{n2}:1: not valid YAML: found the key 'dup' a second time"),
        ("default", "# nothing yet\n", ": empty (no YAML content)"),
    ],
)
def test_yaml_mistakes_name_the_file_and_line(tmp_path, where, text, words):
    path = tmp_path / "config" / "config.yaml" if where == "default" else tmp_path / "my.yaml"
    path.parent.mkdir(exist_ok=True)
    base = TEST_CONFIG.read_text() if "dup: 2" in text else ""
    path.write_text(base + text)
    args = ("--configfile", str(path)) if where == "--configfile" else ()
    proc = snakemake(tmp_path, "-n", *args, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    name = "config/config.yaml" if where == "default" else str(path)
    assert name + words.format(n2=len(base.splitlines()) + 2) in out, out
    assert ("holds a tab" in out) == ("\t" in text)
    assert not (tmp_path / "results").exists()


def test_dvc_repro_push_pull_round_trip(tiny_run, tmp_path):
    """dvc repro reuses the snakemake results; push/pull to a local remote restores them."""
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not installed (it is a project dependency)")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in [
        "Snakefile",
        "rules",
        "scripts",
        "profiles",
        "dvc.yaml",
        "src/oodflow",
        "config/schema.yaml",
        "config/papers/references",
        "envs",
        "report",
    ]:
        src, dst = ROOT / name, repo / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            src, dst, ignore=shutil.ignore_patterns("__pycache__")
        ) if src.is_dir() else shutil.copy(src, dst)
    shutil.copy(TEST_CONFIG, repo / "config" / "config.yaml")
    # dvc.yaml lists the default config's outputs; the tiny config has no search, GAN, multi-label or OSR
    stage = yaml.safe_load((repo / "dvc.yaml").read_text())
    outs = stage["stages"]["mnist5k"]["outs"]
    kept = [o for o in outs if (tiny_run / next(iter(o))).exists()]
    assert {next(iter(o)) for o in outs} - {next(iter(o)) for o in kept} == {
        "results/mnist5k/hpo",
        "results/mnist5k/gan",
        "results/mnist5k-ml",
        "results/osr",
        "results/report/mnist5k-ml",
        "results/report/osr",
    }
    stage["stages"]["mnist5k"]["outs"] = kept
    for section in ("metrics", "plots"):  # top level: files inside the outs
        stage[section] = [p for p in stage[section] if (tiny_run / p).exists()]
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stage, sort_keys=False))
    shutil.copytree(tiny_run / "results", repo / "results")  # as if snakemake had just run here
    shutil.copytree(
        tiny_run / ".snakemake", repo / ".snakemake", ignore=shutil.ignore_patterns("log", "locks")
    )

    def sh(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    sh("dvc", "config", "core.analytics", "false")
    # the tiny run read the checkout's reference files by absolute path (outside it); here they are the
    # copy's, relative: snakemake in the copy first brings those cheap report jobs up to date
    sh(sys.executable, "-m", "snakemake", "--cores", "1")
    model = repo / OUT / "runs" / "tiny" / "model.pt"
    before = model.stat().st_mtime_ns
    out = sh("dvc", "repro")
    assert "Nothing to be done" in out  # snakemake found everything up to date: no retraining
    assert model.stat().st_mtime_ns == before
    shown = sh("dvc", "metrics", "show")
    assert "results/mnist5k/headline/tiny.json" in shown and "AUROC" in shown, shown

    sh("dvc", "remote", "add", "-d", "store", str(tmp_path / "store"))
    sh("dvc", "push")
    reference = (repo / OUT / "tables" / "metrics.csv").read_bytes()
    shutil.rmtree(repo / "results")
    sh("dvc", "pull")
    assert (repo / OUT / "tables" / "metrics.csv").read_bytes() == reference
    assert model.exists()
    snakemake_cmd = [sys.executable, "-m", "snakemake", "--cores", "1"]
    sh(*snakemake_cmd, "--touch")
    assert "Nothing to be done" in sh(*snakemake_cmd, "-n")


def test_outlier_exposure_runs_get_the_aux_pool(tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["runs"]["oe"] = {"model": "small_cnn", "method": "oe", "epochs": 1}
    path = tmp_path / "oe.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = snakemake(tmp_path, "--configfile", str(path), "--dry-run").stdout
    train_inputs = {}
    for block in plan.split("\n\n"):
        if "rule train:" in block:
            run = re.search(r"wildcards: run=(\w+)", block).group(1)
            train_inputs[run] = re.search(r"input: (.*)", block).group(1)
    assert "data/aux.npz" in train_inputs["oe"] and "data/aux.npz" not in train_inputs["tiny"]


def test_fine_tuned_run_waits_for_its_parent(tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["runs"]["ft"] = {**config["runs"]["tiny"], "method": "energy_ft", "init_from": "tiny"}
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = snakemake(tmp_path, "--configfile", str(path), "--dry-run").stdout
    block = next(b for b in plan.split("\n\n") if "rule train:" in b and "run=ft" in b)
    assert "runs/tiny/model.pt" in block and "data/aux.npz" in block


def test_aoe_sweep_with_adversarial_evaluation(tmp_path):
    """A tiny baseline, an EBA-AOE sweep run fine-tuned from it, and the adversarial evaluation."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["benchmark"]["ood_sets"] = ["textures", "uniform"]
    config["runs"] = {"tiny": {**config["runs"]["tiny"], "epochs": 1}}
    config["scores"] = {"msp": {}, "energy": {}}
    template = {**config["runs"]["tiny"], "method": "aoe", "init_from": "tiny"}
    template["method_args"] = {"attack": "eba", "aux_batch_size": 16}
    config["sweeps"] = {"aoe_eps": {"template": template, "param": "method_args.eps", "values": [0.5]}}
    config["adversarial"] = {"eps": [0.0, 0.3]}
    path = tmp_path / "aoe.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "--configfile", str(path))
    out = tmp_path / OUT
    runs = ["tiny", "aoe_eps-0p5"]
    adv = pd.read_csv(out / "tables" / "adversarial.csv")
    assert list(adv.columns) == ["benchmark", "run", "model", "method", "score", "ood_set", "eps",
                                 "AUROC", "AUPR-In", "AUPR-Out", "FPR@95"]  # fmt: skip
    assert len(adv) == len(runs) * 2 * 2 * 2  # runs x OOD sets x scores x eps
    assert list(dict.fromkeys(adv.run)) == runs
    for run in runs:
        per_run = pd.read_csv(out / "tables" / "adversarial" / f"{run}.csv")
        assert per_run.equals(adv[adv.run == run].reset_index(drop=True))
    # eps = 0 is the clean evaluation: the same AUROC as metrics.csv (written with 6 decimals)
    clean = pd.read_csv(out / "tables" / "metrics.csv")
    clean = clean[clean.metric == "AUROC"].merge(adv[adv.eps == 0], on=["run", "score", "ood_set"])
    assert len(clean) == len(runs) * 2 * 2
    np.testing.assert_allclose(clean.AUROC, clean.value, atol=2e-6)
    # the attack changes the scores: some eps > 0 row differs from its clean one
    assert not np.allclose(adv[adv.eps == 0].AUROC.values, adv[adv.eps > 0].AUROC.values)
    sweep = pd.read_csv(out / "tables" / "sweep_aoe_eps.csv")
    assert sweep[["value", "run"]].drop_duplicates().values.tolist() == [[0.5, "aoe_eps-0p5"]]
    for png in ("adversarial_auroc.png", "sweep_aoe_eps.png"):
        assert (out / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the fine-tuned run records the benchmark's normalisation it trained with
    from oodflow import checkpoint

    args = checkpoint.load(out / "runs" / "aoe_eps-0p5" / "model.pt")["config"]["run"]["method_args"]
    assert args == {"attack": "eba", "aux_batch_size": 16, "eps": 0.5, "mean": [0.1307], "std": [0.3081]}
    assert "Nothing to be done" in snakemake(tmp_path, "--configfile", str(path), "--dry-run").stdout


#: A tiny PALM run (two views, prototypes, no classifier head) beside the tiny CE run.
TINY_PALM = {
    "model": "small_cnn",
    "model_args": {"width": 0.25},
    "method": "palm",
    "method_args": {"augmentation": "simclr_gray", "n_proto": 2, "proj_dim": 16},
    "epochs": 2,
    "batch_size": 32,
    "optimizer": "sgd",
    "lr": 0.05,
    "scheduler": "warmup_cosine",
    "warmup_epochs": 1,
    "select": "min_train_loss",
    "scores": ["mahalanobis", "knn"],
}


def test_prototype_run_is_scored_by_its_own_scores_with_a_figure(tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["benchmark"]["ood_sets"] = ["textures", "uniform"]
    config["runs"]["tiny_palm"] = TINY_PALM
    config["adversarial"] = {"eps": [0.0]}  # prototype runs are left out of it by default
    path = tmp_path / "palm.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "--configfile", str(path))
    out = tmp_path / OUT
    frame = pd.read_csv(out / "tables" / "metrics.csv")
    assert set(frame[frame.run == "tiny_palm"].score) == {"-", "mahalanobis", "knn"}
    assert set(frame[frame.run == "tiny"].score) == {"-", *config["scores"]}
    assert (out / "figures" / "tiny_palm" / "prototypes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "scores" / "tiny_palm" / "msp.npz").exists()  # not computed for a prototype run
    assert "lowest mean training loss" in (out / "tables" / "fpr95_auroc.md").read_text()
    assert set(pd.read_csv(out / "tables" / "adversarial.csv").run) == {"tiny"}
    cache = load_npz(out / "features" / "tiny_palm" / "test.npz")
    assert cache["prototypes"].shape == (10 * 2, 16) and cache["embeddings"].shape[1] == 16
    plan = snakemake(tmp_path, "--configfile", str(path), "--dry-run").stdout
    assert "Nothing to be done" in plan


def test_headless_arpl_run_caches_its_reciprocal_point_logits(tiny_run, tiny_config):
    """The tiny config's ARPL run: the cache's logits are the reciprocal points' (its accuracy is
    theirs), its model.pt keeps the points, and it is in the cross-paper table with its label."""
    import torch

    from oodflow import checkpoint
    from oodflow.methods import build_method
    from oodflow.training import load_model

    out = tiny_run / OUT
    model, payload = load_model(out / "runs" / "tiny_arpl" / "model.pt")
    assert set(payload["method"]) == {"points", "radius"}
    method = build_method("arpl")
    method.setup(model, 10)
    method.load_state_dict(payload["method"])
    cache = load_npz(out / "features" / "tiny_arpl" / "test.npz")
    with torch.no_grad():
        feats = torch.from_numpy(cache["features"])
        np.testing.assert_allclose(
            cache["logits"], method.criterion.logits(feats).numpy(), rtol=1e-5, atol=1e-5
        )
    parent = checkpoint.load(out / "runs" / "tiny" / "model.pt")["model"]
    assert torch.equal(payload["model"]["head.weight"], parent["head.weight"])  # the head is not trained
    frame = pd.read_csv(out / "tables" / "metrics.csv")
    acc = frame[(frame.run == "tiny_arpl") & (frame.metric == "accuracy")].value.item()
    assert acc == pytest.approx(float((cache["logits"].argmax(1) == cache["labels"]).mean()))
    assert set(frame[frame.run == "tiny_arpl"].score) == {"-", "msp", "energy", "knn"}
    cross = pd.read_csv(out / "tables" / "cross_paper.csv")
    assert set(cross[cross.run == "tiny_arpl"].paper) == {"DIAS paper: ARPL objective on this benchmark"}


#: DIAS and EDGE (the OSR and multi-label papers' objectives) fine-tuned from the tiny CE run.
TINY_OBJECTIVES = {
    "tiny_dias": {"method": "dias", "method_args": {"gan_width": 4, "latent_dim": 8}},
    "tiny_edge": {"method": "edge", "method_args": {"k": 8, "start_epoch": 0, "aux_batch_size": 16}},
}


def test_dias_and_edge_runs_train_from_the_baseline_and_reach_the_cross_paper_table(tmp_path):
    from oodflow import checkpoint

    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["benchmark"]["ood_sets"] = ["uniform"]
    del config["runs"]["tiny_arpl"]
    config["scores"] = {"msp": {}, "joint_energy": {}}
    for name, spec in TINY_OBJECTIVES.items():
        config["runs"][name] = {**config["runs"]["tiny"], **spec, "init_from": "tiny", "epochs": 1}
    path = tmp_path / "objectives.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "--configfile", str(path))
    out = tmp_path / OUT
    cross = pd.read_csv(out / "tables" / "cross_paper.csv")
    assert set(cross.run) == {"tiny", "tiny_dias", "tiny_edge"} and set(cross.score) == {
        "msp",
        "joint_energy",
    }
    assert set(cross[cross.run == "tiny_edge"].paper) == {"EDGE objective on this benchmark (one-hot)"}
    # (EDGE refuses to train without outliers: the DAG gave it the aux pool)
    assert "method" not in checkpoint.load(out / "runs" / "tiny_dias" / "model.pt")  # GAN, copycat: not kept
    cache = load_npz(out / "features" / "tiny_dias" / "test.npz")
    assert np.allclose(
        cache["logits"], cache["features"] @ cache["head_weight"].T + cache["head_bias"], atol=1e-5
    )
