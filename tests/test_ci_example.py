"""examples/ci: gate.sh branches on the gate's exit codes and keeps the JUnit report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_toolctl

GATE_SH = REPO / "examples" / "ci" / "gate.sh"
WORKFLOW = REPO / "examples" / "ci" / "canary-gate.yml"
REGRESSED = ("--tool", "search_web", "--tool", "sql_query", "--tool", "vector_search")


def gate_sh(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env["TOOLCTL"] = f"{sys.executable} -m toolctl"
    full_env.update(env or {})
    return subprocess.run(["sh", str(GATE_SH), *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=180)


def hooks(tmp_path: Path) -> dict:
    """One hook per branch, each appending its name and what it was told to a file."""
    log = tmp_path / "branches.log"
    return {f"ON_{b.upper()}": f'echo "{b} $DECISION $GATE_EXIT_CODE $GATE_JUNIT" >> {log}'
            for b in ("promote", "hold", "rollback", "inconclusive", "error")}


def junit_matches(junit: Path, gate_json: Path, verdict: str) -> None:
    doc = json.loads(gate_json.read_text())
    suite = ET.parse(junit).getroot()
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert doc["verdict"] == props["verdict"] == verdict
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {c["name"] for c in doc["checks"]}
    for check in doc["checks"]:
        failed = cases[check["name"]].find("failure") is not None
        assert failed == (check["outcome"] == "fail"), check["name"]
    assert int(suite.get("failures")) == sum(c["outcome"] == "fail" for c in doc["checks"])


@pytest.mark.slow
def test_gate_sh_holds_then_rolls_back_the_sample_canary_and_keeps_the_junit_report(tmp_path):
    db = tmp_path / "store.duckdb"
    res = run_toolctl("--db", db, "ingest", REPO / "sample_logs")
    assert res.returncode == 3, res.stderr  # the sample logs hold some rejected lines on purpose
    out = tmp_path / "github_output"
    env = {**hooks(tmp_path), "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    args = ("--baseline", "v1.8.2", "--candidate", "v1.9.0-rc1", "--db", str(db), "--report-dir", "rep",
            "--", "--until", "2026-11-24T12:00:00Z", *REGRESSED)

    # First evaluation: the three regressed tools fail their latency checks once → hold.
    first = gate_sh(*args, cwd=tmp_path, env=env)
    assert first.returncode == 10, first.stderr
    assert "gate: hold (exit 10)" in first.stdout
    junit_matches(tmp_path / "rep" / "junit.xml", tmp_path / "rep" / "gate.json", "hold")
    kept = (tmp_path / "rep" / "junit.xml").read_bytes()

    # Second evaluation (a later CI run on the same store): failed twice in a row → rollback.
    second = gate_sh(*args, cwd=tmp_path, env=env)
    assert second.returncode == 20, second.stderr
    junit_matches(tmp_path / "rep" / "junit.xml", tmp_path / "rep" / "gate.json", "rollback")
    assert (tmp_path / "rep" / "junit.xml").read_bytes() != kept  # a fresh report per run

    assert (tmp_path / "branches.log").read_text().splitlines() == [
        "hold hold 10 rep/junit.xml", "rollback rollback 20 rep/junit.xml"]
    assert out.read_text().splitlines() == ["decision=hold", "exit_code=10",
                                            "decision=rollback", "exit_code=20"]
    assert "### Canary gate: rollback" in (tmp_path / "summary.md").read_text()


def test_gate_sh_takes_the_error_branch_for_an_unreadable_store_and_usage_errors(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not a database")
    res = gate_sh("--baseline", "a", "--candidate", "b", "--db", str(bad), cwd=tmp_path, env=hooks(tmp_path))
    assert res.returncode == 40, res.stderr
    assert "gate: error (exit 40)" in res.stdout and "cannot open store" in res.stderr
    # Bad gate options: the gate's usage code passes through, on the error branch.
    res = gate_sh("--baseline", "a", "--candidate", "b", "--db", str(tmp_path / "new.duckdb"), "--",
                  "--runbook", "missing.yaml", cwd=tmp_path, env=hooks(tmp_path))
    assert res.returncode == 2 and "gate: usage (exit 2)" in res.stdout and "missing.yaml" in res.stderr
    assert (tmp_path / "branches.log").read_text().splitlines() == [
        "error error 40 gate-report/junit.xml", "error usage 2 gate-report/junit.xml"]
    # The script's own usage errors never run toolctl.
    res = gate_sh("--baseline", "a", cwd=tmp_path, env={"TOOLCTL": "false"})
    assert res.returncode == 2 and "--candidate are required" in res.stderr
    # A failing hook fails the script, whatever the verdict.
    res = gate_sh("--baseline", "a", "--candidate", "b", "--db", str(bad), cwd=tmp_path,
                  env={"ON_ERROR": "exit 7"})
    assert res.returncode == 1 and "the error hook failed" in res.stderr
    # toolctl missing altogether.
    res = gate_sh("--baseline", "a", "--candidate", "b", cwd=tmp_path, env={"TOOLCTL": str(tmp_path / "nope")})
    assert res.returncode == 1 and "cannot run" in res.stderr


def test_the_workflow_runs_gate_sh_and_branches_on_its_decision():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert {"workflow_dispatch", "schedule"} <= set(triggers)
    gate = wf["jobs"]["gate"]
    steps = {s.get("name") or s.get("uses"): s for s in gate["steps"]}
    run = steps["Gate"]["run"]
    assert "examples/ci/gate.sh" in run and "--report-dir gate-report" in run
    assert "case $rc in 0|10|20) exit 0" in run  # hold/rollback are verdicts; 30/40/2 fail the job
    assert gate["outputs"]["decision"] == "${{ steps.gate.outputs.decision }}"
    assert steps["Publish the JUnit report"]["with"]["report_paths"] == "gate-report/junit.xml"
    assert steps["Upload the gate reports"]["if"] == "always()"
    assert wf["jobs"]["promote"]["if"] == "needs.gate.outputs.decision == 'promote'"
    assert wf["jobs"]["rollback"]["if"] == "needs.gate.outputs.decision == 'rollback'"
    # The script the workflow runs is executable in a checkout.
    assert os.access(GATE_SH, os.X_OK)
