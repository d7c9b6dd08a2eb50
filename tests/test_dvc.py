"""DVC pipelines: the paper stages (papers/dvc.yaml), the lock check of CI (.ci/check_dvc_lock), and a
paper stage end to end in a temporary git + DVC repository with a local remote (marker ``dvc``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oodflow import dvcpapers, provenance

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / ".ci" / "check_dvc_lock"
needs_tools = pytest.mark.skipif(
    shutil.which("dvc") is None or shutil.which("git") is None, reason="needs dvc and git"
)


def _run(cmd, cwd, env=None, check=True, timeout=1800):  # generous: CPU may be shared
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _run(["git", "init", "-q"], path)
    _run(["git", "config", "user.email", "t@example.org"], path)
    _run(["git", "config", "user.name", "t"], path)
    _run(["dvc", "init", "-q"], path)
    _run(["dvc", "config", "core.analytics", "false"], path)
    return path


def _commit(repo: Path, msg: str) -> None:
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-q", "-m", msg], repo)


# ------------------------------------------------------------------------------ papers/dvc.yaml
def test_papers_dvc_yaml_is_current():
    assert dvcpapers.main(["--check"]) == 0, "run `python -m oodflow.dvcpapers`"


def test_a_stage_per_paper_config_with_its_folders_as_outs():
    doc = dvcpapers.pipeline()
    from oodflow import config as oodflow_config

    papers = sorted((ROOT / "config" / "papers").glob("*.yaml"))
    for path in papers:
        stage = doc["stages"][path.stem]
        cfg = oodflow_config.load(path)
        outs = [next(iter(o)) for o in stage["outs"]]
        assert {f"results/{f}" for f in provenance.parts(cfg)} <= set(outs), path.name
        assert stage["wdir"] == ".." and f"--configfile config/papers/{path.name}" in stage["cmd"]
        assert f"config/papers/{path.name}" in stage["deps"]
        for dep in stage["deps"]:
            if dep.startswith("resources/datasets/"):  # each dataset folder is some stage's out
                ds = dep.split("/")[2]
                owner = doc["stages"][f"dataset-{ds}"]
                assert dep in [next(iter(o)) for o in owner["outs"]]
    food = doc["stages"]["food101"]
    assert "config/papers/references/food101.yaml" in food["deps"]  # report.comparisons[].reference
    # every out has exactly one owner (DVC refuses two), the default stage's included
    top = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    owners = [next(iter(o)) for s in [*doc["stages"].values(), *top.values()] for o in s["outs"]]
    assert len(owners) == len(set(owners))
    overlapping = [(a, b) for a in owners for b in owners if a != b and b.startswith(a + "/")]
    assert not overlapping


@needs_tools
def test_bare_repro_runs_the_top_dvc_yaml_only(tmp_path):
    """DVC 3: `dvc repro` without targets means `dvc.yaml` of the current directory."""
    repo = _repo(tmp_path / "r")
    (repo / "dvc.yaml").write_text("stages:\n  top:\n    cmd: echo top > top.txt\n    outs: [top.txt]\n")
    (repo / "papers").mkdir()
    (repo / "papers" / "dvc.yaml").write_text(
        "stages:\n  p:\n    wdir: ..\n    cmd: echo p > p.txt\n    outs: [p.txt]\n"
    )
    _commit(repo, "init")
    out = _run(["dvc", "repro"], repo).stdout
    assert (repo / "top.txt").exists() and not (repo / "p.txt").exists(), out
    _run(["dvc", "repro", "papers/dvc.yaml:p"], repo)
    assert (repo / "p.txt").read_text() == "p\n"


# ------------------------------------------------------------------------- .ci/check_dvc_lock
@needs_tools
def test_lock_check_fails_on_a_stale_lock(tmp_path):
    repo = _repo(tmp_path / "r")
    (repo / "in.txt").write_text("one\n")
    (repo / "params.yaml").write_text("n: 1\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n"
        "    params: [n]\n    outs: [out.txt]\n"
    )
    _run(["dvc", "repro"], repo)
    _commit(repo, "fresh lock")
    fresh = _run([sys.executable, CHECK], repo, check=False)
    assert fresh.returncode == 0, fresh.stderr
    (repo / "in.txt").write_text("two\n")  # a commit changed a dependency, not the lock
    (repo / "params.yaml").write_text("n: 2\n")
    stale = _run([sys.executable, CHECK, "dvc.yaml"], repo, check=False)
    assert stale.returncode == 1
    assert "dvc.lock is stale" in stale.stderr and "copy: changed deps: in.txt modified" in stale.stderr
    assert "params.yaml n modified" in stale.stderr
    _run(["dvc", "repro"], repo)  # reproduced: fresh again, until an output differs from the lock
    record = ["--machine", str(tmp_path / "lock_machine.json")]
    assert _run([sys.executable, CHECK, *record, "--record"], repo, check=False).returncode == 0
    assert _run([sys.executable, CHECK, *record], repo, check=False).returncode == 0
    (repo / "out.txt").write_text("other bytes\n")
    stale = _run([sys.executable, CHECK, *record], repo, check=False)  # on the lock's machine: an error
    assert stale.returncode == 1 and "copy: changed outs: out.txt modified" in stale.stderr
    # on another kind of CPU other output bytes are a warning (float kernels differ), deps never are
    other = json.loads((tmp_path / "lock_machine.json").read_text()) | {"cpu": "another CPU"}
    (tmp_path / "lock_machine.json").write_text(json.dumps(other))
    warned = _run([sys.executable, CHECK, *record], repo, check=False)
    assert warned.returncode == 0 and "WARNING" in warned.stderr and "out.txt modified" in warned.stderr
    # a clean clone (.ci/run: --deps-only): missing or other outputs are not compared, deps and params are
    (repo / "out.txt").unlink()
    clone = _run([sys.executable, CHECK, "--deps-only", *record], repo, check=False)
    assert clone.returncode == 0 and "matches the dependencies and params" in clone.stdout
    (repo / "params.yaml").write_text("n: 3\n")
    assert _run([sys.executable, CHECK, *record], repo, check=False).returncode == 1
    stale = _run([sys.executable, CHECK, "--deps-only", *record], repo, check=False)
    assert stale.returncode == 1 and "params.yaml n modified" in stale.stderr
    assert "out.txt" not in stale.stderr


# --------------------------------------------------------------- a paper stage end to end (slow)
TOY = "osr_tinyimagenet_800"  # the quickest smoke config (one dataset, ~30 s on 2 cores)


def _copy_checkout(dest: Path) -> None:
    """The tracked files of this checkout (working-tree versions) without its pipelines and papers."""
    files = _run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    for rel in filter(None, files):
        if rel in ("dvc.yaml", "dvc.lock") or rel.startswith(("papers/", "tests/", "docs/", ".dvc/")):
            continue
        if rel.startswith("config/papers/") and rel.count("/") == 2:
            continue
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.mark.dvc
@needs_tools
def test_paper_stage_repro_push_pull_status(tmp_path):
    from oodflow.smoke import run as smoke

    s = smoke.setup(ROOT / "config" / "papers" / f"{TOY}.yaml", tmp_path / "smoke")
    repo = _repo(tmp_path / "repo")
    _copy_checkout(repo)
    # the toy-scale config stands in for the paper config (same name, same stage)
    shutil.copy(s.configfile, repo / "config" / "papers" / f"{TOY}.yaml")
    (repo / "papers").mkdir()
    (repo / "papers" / "dvc.yaml").write_text(dvcpapers.render(dvcpapers.pipeline(repo)))
    (repo / "dvc.yaml").write_text(
        "stages:\n  default:\n    cmd: echo default > default.txt\n    outs: [default.txt]\n"
    )
    _run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], repo)
    _commit(repo, "toy paper")
    env = {**os.environ, **s.env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    _run(["dvc", "repro"], repo, env)  # bare: the top dvc.yaml only
    assert not (repo / "results").exists()
    out = _run(["dvc", "repro", f"papers/dvc.yaml:{TOY}"], repo, env).stdout
    assert "dataset-tinyimagenet" in out  # the upstream dataset stage ran first
    cfg = yaml.safe_load(s.configfile.read_text())
    folder = provenance.folder(cfg, "osr")
    heads = sorted((repo / "results" / folder / "headline").glob("*.json"))
    assert heads and all(
        set(json.loads(h.read_text())) == {"score", "accuracy", "AUROC", "FPR@95"} for h in heads
    )
    assert (repo / "results" / "report" / folder).is_dir()
    assert not (repo / "results" / "summary").exists()  # the scorecard is the default stage's
    shown = _run(["dvc", "metrics", "show", f"results/{folder}/headline"], repo, env).stdout
    assert max(len(line) for line in shown.splitlines()) <= 120, shown
    assert _run(["dvc", "status", "--json"], repo, env).stdout.strip() == "{}"
    _run(["dvc", "push"], repo, env)
    _commit(repo, "pin the toy paper")  # papers/dvc.lock: the commit pins its results

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    _run(["dvc", "pull"], clone, env)
    assert sorted(p.name for p in (clone / "results" / folder / "headline").glob("*.json")) == [
        h.name for h in heads
    ]
    assert _run(["dvc", "status", "--json"], clone, env).stdout.strip() == "{}"
    for h in heads:  # the same bytes
        assert (clone / h.relative_to(repo)).read_bytes() == h.read_bytes()
    # DVC does not keep modification times: mark the pulled files up to date (README), then Snakemake
    # has nothing to do and the lock still matches
    sm = ["snakemake", "config_results", "--cores", "1", "--configfile", f"config/papers/{TOY}.yaml"]
    _run([*sm, "--touch"], clone, env)
    dry = _run([*sm, "-n"], clone, env).stdout
    assert "Nothing to be done" in dry, dry
    assert _run(["dvc", "status", "--json"], clone, env).stdout.strip() == "{}"
