"""
Unit tests of the pillar validator (_modules/pgfailover_pillar.py): the lab's
pillar passes; every bad pillar of helpers.bad_pillars is refused with a
message that names the pillar key, the value and what is allowed. The lab test
test/integration/formula/test_bad_pillar.py applies the same pillars to bare
hosts and proves that nothing changed.
"""

import importlib.util
import os

import pytest
import yaml

from helpers.bad_pillars import CASES, broken, good

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location(
    "pgfailover_pillar", os.path.join(REPO, "_modules", "pgfailover_pillar.py")
)
validator = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(validator)
with open(os.path.join(REPO, "pgfailover", "parameters", "defaults.yaml")) as f:
    PROFILES = yaml.safe_load(f)["values"]["failover_profiles"]


def validate(cluster, **grains):
    return validator.validate(
        cluster, PROFILES, grains.get("os_family", "Debian"), grains.get("release", "12")
    )


def test_the_lab_pillar_the_example_and_the_kitchen_pillar_are_valid():
    assert validate(good()) == []
    for path in ("pillar.example", "test/salt/pillar/kitchen_single_host.sls"):
        with open(os.path.join(REPO, path)) as f:
            assert validate(yaml.safe_load(f)["pgfailover"]) == [], path


@pytest.mark.parametrize(("change", "named"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_pillar_is_refused_with_the_key_and_what_is_allowed(change, named):
    problems = validate(broken(change))
    assert any(named in problem for problem in problems), problems


def test_every_problem_is_reported_at_once():
    cluster = good()
    cluster.update(auth="scram", number_sync_standbys=5)
    cluster["nodes"][0]["candidate_priority"] = 500
    assert len(validate(cluster)) == 3


def test_the_postgresql_version_is_checked_against_the_hosts_package_source():
    cluster = good()
    cluster["repo"] = {"kind": "distribution"}
    assert validate(cluster) == []
    cluster["postgresql_version"] = 16
    assert "Debian 12's own packages offer 15" in validate(cluster)[0]
    assert validate(cluster, os_family="RedHat", release="9") == []  # PGDG has 16
    cluster["repo"] = {"kind": "rpm_file"}
    assert "the vendor RPM offer 13" in validate(cluster, os_family="RedHat", release="7")[0]


def test_trust_needs_no_password_and_explicit_timeouts_may_be_safe():
    cluster = good()
    cluster["auth"] = "trust"
    del cluster["passwords"]
    cluster["failover"] = {
        "profile": "fast",
        "network_partition_timeout": 10,
        "monitor": {"primary_demote_timeout": 13000},
    }
    assert validate(cluster) == []


@pytest.mark.parametrize(
    ("haproxy", "health", "named"),
    [
        ({"minions": "mon"}, {}, "pgfailover:haproxy:minions is 'mon'; allowed: a list of minion IDs"),
        (
            {"minions": ["mon"], "read_only_port": 5000},
            {},
            "pgfailover:haproxy:read_write_port and pgfailover:haproxy:read_only_port are both 5000",
        ),
        (
            {"minions": ["mon"], "stats_port": 5431},
            {},
            "stats_port is 5431, already used on minion mon by the monitor",
        ),
        (
            {"minions": ["pg1"]},
            {"port": 5432},
            "health endpoint on port 5432 of minion pg1, already used by node pg1",
        ),
        (
            {"minions": ["mon"], "fall": 0},
            {},
            "pgfailover:haproxy:fall is 0; allowed: a whole number from 1 to 100",
        ),
        (
            {"minions": ["mon"], "timeout": {"check": 5}},
            {},
            "pgfailover:haproxy:timeout:check is 5; allowed: milliseconds",
        ),
        ({"minions": ["mon"]}, {"enabled": False}, "HAProxy routes by the nodes' health endpoints"),
    ],
)
def test_haproxy_and_health_endpoint_mistakes_are_refused(haproxy, health, named):
    cluster = good()
    cluster["haproxy"] = haproxy
    cluster["health"] = health
    assert any(named in problem for problem in validate(cluster)), validate(cluster)


def test_a_health_port_is_checked_only_where_endpoints_run():
    cluster = good()
    cluster["health"] = {"port": 5432}  # no HAProxy: no endpoint, nothing listens there
    assert validate(cluster) == []
