"""
The alert rules users get (pgfailover/files/prometheus/alerts.yml), checked
and unit-tested by promtool on synthetic series (test/prometheus/alerts_test.yml):
each alert fires when it should, with its labels and runbook, and stays
silent on a healthy formation and during a normal failover.
"""

import ast
import importlib.util
import os
import re
import subprocess

import yaml

from lab.paths import CACHE, REPO

RULES = os.path.join(REPO, "pgfailover", "files", "prometheus", "alerts.yml")
TESTS = os.path.join(REPO, "test", "prometheus", "alerts_test.yml")
PROMTOOL = os.path.join(CACHE, "prometheus", "usr", "bin", "promtool")
QUERIES = os.path.join(REPO, "pgfailover", "files", "metrics", "queries.yaml.jinja")


def promtool(*args):
    assert os.access(PROMTOOL, os.X_OK), f"{PROMTOOL} is missing: run bin/install-deps"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests():
    result = promtool("test", "rules", TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_has_a_runbook():
    with open(RULES) as f:
        rules = [rule for group in yaml.safe_load(f)["groups"] for rule in group["rules"]]
    with open(TESTS) as f:
        cases = [case for test in yaml.safe_load(f)["tests"] for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case.get("exp_alerts")}
    for rule in rules:
        assert rule["alert"] in fired, f"{rule['alert']} is never tested firing"
        assert rule["annotations"].get("runbook"), f"{rule['alert']} has no runbook line"


def test_the_metrics_queries_count_as_primary_the_states_the_execution_module_calls_writable():
    """The queries render on bare hosts, before the execution module can load: their copy must not drift."""
    spec = importlib.util.spec_from_file_location(
        "pgfailover_module", os.path.join(REPO, "_modules", "pgfailover.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(QUERIES) as f:
        declared = re.search(r"set writable_states = (\[[^]]*\])", f.read()).group(1)
    assert ast.literal_eval(declared) == sorted(module.WRITABLE_STATES)
