"""
Unit tests of the pillar validator (_modules/pgfailover_pillar.py): the lab's
pillar passes; every bad pillar of helpers.bad_pillars is refused with a
message that names the pillar key, the value and what is allowed. The lab test
test/integration/formula/test_bad_pillar.py applies the same pillars to bare
hosts and proves that nothing changed.
"""

import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.bad_pillars import (
    BILLING,
    BILLING_BEHIND_HAPROXY,
    CASES,
    FORMATION_CASES,
    HARDENING_CASES,
    broken,
    good,
)
from helpers.source import load
from lab.paths import REPO

validator = load("_modules/pgfailover_pillar.py", "pgfailover_pillar")
with open(os.path.join(REPO, "pgfailover", "parameters", "defaults.yaml")) as f:
    PARAMETERS = yaml.safe_load(f)["values"]


def validate(cluster, **grains):
    return validator.validate(
        cluster, PARAMETERS, grains.get("os_family", "Debian"), grains.get("release", "12")
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


@pytest.mark.parametrize(
    ("change", "named"), [case[1:] for case in HARDENING_CASES], ids=[case[0] for case in HARDENING_CASES]
)
def test_input_that_would_reach_sql_files_or_shells_is_refused(change, named):
    problems = validate(broken(change))
    assert any(named in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("change", "named"), [case[1:] for case in FORMATION_CASES], ids=[case[0] for case in FORMATION_CASES]
)
def test_bad_formations_are_refused_with_the_key_and_what_is_allowed(change, named):
    problems = validate(broken(change))
    assert any(named in problem for problem in problems), problems


def test_two_formations_on_the_same_hosts_behind_one_haproxy_pass():
    cluster = good()
    cluster.update(formations={"billing": BILLING_BEHIND_HAPROXY}, haproxy={"minions": ["mon"]})
    assert validate(cluster) == []


def test_a_second_formation_on_the_monitor_is_valid_and_nodes_may_share_minions_on_other_ports():
    cluster = good()
    cluster["formations"] = {"billing": BILLING}
    assert validate(cluster) == []
    cluster["formations"]["billing"]["nodes"] = [
        {"name": "pgb1", "minion": "pg1", "port": 5433},
        {"name": "pgb2", "minion": "pg2", "port": 5433},
        {"name": "pgb3", "minion": "pg3", "port": 5433},
    ]
    assert validate(cluster) == []


@pytest.mark.parametrize(
    "secret",
    [918273645546372819, ["lab-app-Zi8v-secret"], {"value": "lab-app-Zi8v-secret"}, "lab-app-Zi8v-secret\n"],
    ids=["number", "list", "mapping", "newline"],
)
def test_no_refusal_shows_a_password(secret):
    cluster = good()
    cluster["passwords"]["app"] = secret
    problems = validate(cluster)
    assert any("pgfailover:passwords:app" in problem for problem in problems), problems
    text = " ".join(problems)
    assert "918273645546372819" not in text and "Zi8v-secret" not in text, text
    cluster["passwords"] = "lab-app-Zi8v-secret"
    text = " ".join(validate(cluster))
    assert "pgfailover:passwords must be a mapping" in text and "Zi8v-secret" not in text, text


def test_the_application_owner_may_not_be_the_service_user():
    cluster = good()
    cluster["app"]["owner"] = "dba"
    assert validate(cluster) == []
    parameters = dict(PARAMETERS, user="dba")
    problems = validator.validate(cluster, parameters, "Debian", "12")
    assert "not the service user dba" in " ".join(problems), problems


def test_default_data_directories_follow_the_formulas_data_root():
    """A node placed in another node's default data directory clashes with it, wherever data_root is."""
    cluster = good()
    cluster["nodes"][1] = {"name": "pg2", "minion": "pg1", "port": 5433, "pgdata": "/srv/pg/pg1"}
    assert validate(cluster) == []
    parameters = dict(PARAMETERS, data_root="/srv/pg")
    problems = validator.validate(cluster, parameters, "Debian", "12")
    assert "put node pg1 in /srv/pg/pg1 and node pg2 in /srv/pg/pg1 on minion pg1" in " ".join(problems)


def test_settings_of_every_type_a_dba_writes_are_accepted():
    cluster = good()
    cluster["postgresql"]["settings"] = {
        "log_connections": True,
        "work_mem": "4MB",
        "random_page_cost": 1.1,
        "max_connections": 200,
        "search_path": '"$user", public',
        "auto_explain.log_min_duration": "1s",
    }
    assert validate(cluster) == []


# Values of every shape a YAML pillar can hold, for mutating a valid pillar.
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value, prefix=()):
    """Every key path inside a pillar (mappings and list items)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _reach(value, path):
    """The value at ``path`` when an earlier mutation left it reachable, else None."""
    for key in path:
        in_dict = isinstance(value, dict) and key in value
        if in_dict or (isinstance(value, list) and isinstance(key, int) and key < len(value)):
            value = value[key]
        else:
            return None
    return value


GOOD_PATHS = sorted(_paths(good()), key=str)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(GOOD_PATHS), YAML_VALUES, st.booleans()), min_size=1, max_size=4),
)
def test_a_randomly_mutated_pillar_is_accepted_or_refused_never_crashes(mutations):
    """The validator answers any pillar shape with sentences naming keys, never a traceback."""
    cluster = good()
    for path, value, replace in mutations:
        parent = _reach(cluster, path[:-1])
        if isinstance(parent, dict):
            parent[path[-1]] = value if replace else {"unexpected": value}
        elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
            parent[path[-1]] = value
    problems = validate(cluster)
    assert isinstance(problems, list)
    assert all(isinstance(p, str) and "pgfailover" in p for p in problems), problems


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


def test_explicit_timeouts_may_be_safe():
    cluster = good()
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


@pytest.mark.parametrize(
    ("metrics", "node_options", "named"),
    [
        ({"port": 0}, {}, "pgfailover:metrics:port is 0; allowed: a port number"),
        ({"prot": 9187}, {}, "pgfailover:metrics:prot is unknown; did you mean port?"),
        ({"web_config": {"tls_config": {}}}, {}, "pgfailover:metrics:web_config is"),
        ({"web_config": "basic"}, {}, "allowed: a mapping of the exporter's web configuration keys"),
        ({"dbuser": "metrics; DROP"}, {}, "pgfailover:metrics:dbuser is"),
        (
            {"port": 5432},
            {},
            "pgfailover:nodes:0:metrics_port (or pgfailover:metrics:port) gives the exporter "
            "port 5432 on minion pg1, where node pg1's PostgreSQL listens",
        ),
        ({}, {"metrics_port": "x"}, "pgfailover:nodes:0:metrics_port is 'x'"),
    ],
    ids=[
        "port",
        "unknown-key",
        "web-config-key",
        "web-config-type",
        "dbuser",
        "on-postgres",
        "node-port",
    ],
)
def test_metrics_mistakes_are_refused_naming_the_key(metrics, node_options, named):
    cluster = good()
    cluster["metrics"] = metrics
    cluster["nodes"][0].update(node_options)
    problems = validate(cluster)
    assert any(named in problem for problem in problems), problems


def test_exporters_of_one_minion_need_their_own_ports_and_a_valid_metrics_section_passes():
    cluster = good()
    cluster["metrics"] = {"port": 9300, "web_config": {"basic_auth_users": {"prometheus": "$2y$10$x"}}}
    assert validate(cluster) == []
    cluster["monitor"]["minion"] = cluster["nodes"][0].get("minion", cluster["nodes"][0]["name"])
    problems = validate(cluster)
    assert any(
        "pgfailover:nodes:0:metrics_port" in p and "the exporter of pgfailover:monitor" in p for p in problems
    )
    cluster["monitor"]["metrics_port"] = 9301
    assert validate(cluster) == []


@pytest.mark.parametrize(
    ("tofs", "named"),
    [
        ({"files_switch": "id"}, "pgfailover:tofs:files_switch is 'id'; allowed: a list of grain names"),
        ({"files_switch": ["os family"]}, "pgfailover:tofs:files_switch is ['os family']"),
        ({"source_files": {"haproxy.cfg.jinja": ["../../etc/shadow"]}}, "pgfailover:tofs:source_files is"),
        ({"source_files": {"haproxy.cfg.jinja": "/etc/haproxy.cfg"}}, "allowed: a mapping of a formula file"),
    ],
    ids=["switch-not-a-list", "switch-bad-grain", "source-dotdot", "source-not-a-list"],
)
def test_tofs_mistakes_are_refused_naming_the_key(tofs, named):
    cluster = good()
    cluster["tofs"] = tofs
    problems = validate(cluster)
    assert any(named in problem for problem in problems), problems


def test_a_tofs_section_with_site_files_is_valid():
    cluster = good()
    cluster["tofs"] = {
        "files_switch": ["id", "os_family"],
        "source_files": {"haproxy.cfg.jinja": ["site/ha.cfg"]},
    }
    assert validate(cluster) == []


def test_an_exporter_port_clashes_with_a_health_endpoint_only_where_endpoints_run():
    cluster = good()
    cluster["metrics"] = {"port": 8008}
    assert validate(cluster) == []  # no HAProxy: no health endpoints
    cluster["haproxy"] = {"minions": ["mon"]}
    problems = validate(cluster)
    assert any(
        "pgfailover:nodes:0:metrics_port" in p and "node pg1's health endpoint listens" in p for p in problems
    )
    del cluster["haproxy"]
    cluster["health"] = {"enabled": True}
    assert any("node pg1's health endpoint listens" in p for p in validate(cluster))


@pytest.mark.parametrize("name", ["pg1", "_x", "Billing.eu-1", "a" * 63])
def test_is_name_accepts_postgres_style_names(name):
    assert validator.is_name(name) is True


@pytest.mark.parametrize("name", ["", "1pg", "pg 1", "pg1\n", "a" * 64, "pg;1", None, 5])
def test_is_name_refuses_anything_else(name):
    assert validator.is_name(name) is False
