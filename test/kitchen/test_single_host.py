"""
Verifier of the single-host suite (test/salt/pillar/kitchen_single_host.sls):
the monitor and two nodes on one host, converged by the formula alone
(masterless), as a user of `kitchen test` would check them.
"""

import json

import pytest
import yaml

from lab.paths import REPO

DATA_ROOT = "/var/lib/postgresql/pgaf"
GUARD = "/usr/local/lib/pgfailover/pidfile-guard"
UNITS = ("pgautofailover-monitor", "pgautofailover-node-node1", "pgautofailover-node-node2")
OWNER_QUERY = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
PG_AUTOCTL = [
    "runuser",
    "-u",
    "postgres",
    "--",
    "env",
    "HOME=/var/lib/postgresql",
    "XDG_RUNTIME_DIR=/run/pgfailover",
    "pg_autoctl",
]


@pytest.fixture(scope="module")
def pillar():
    with open(f"{REPO}/test/salt/pillar/kitchen_single_host.sls") as f:
        return yaml.safe_load(f)["pgfailover"]


@pytest.mark.parametrize("unit", UNITS)
def test_every_instance_runs_under_its_enabled_unit_with_the_pidfile_guard(host, unit):
    assert host.run("systemctl", "is-active", unit).stdout.strip() == "active"
    assert host.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
    assert host.check("stat", "-c", "%a", GUARD).strip() == "755"
    assert f"ExecStartPre={GUARD}" in host.check("cat", f"/etc/systemd/system/{unit}.service")


def test_the_monitor_holds_one_primary_and_one_secondary(host):
    out = host.check(*PG_AUTOCTL, "show", "state", "--pgdata", f"{DATA_ROOT}/monitor", "--json")
    states = {node["nodename"]: node["current_group_state"] for node in json.loads(out)}
    assert sorted(states.values()) == ["primary", "secondary"], states


@pytest.mark.parametrize("instance", ["monitor", "node1", "node2"])
def test_no_trust_line_is_left_in_pg_hba(host, instance):
    hba = host.check("cat", f"{DATA_ROOT}/{instance}/pg_hba.conf")
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and not [rule for rule in rules if rule[-1] == "trust"], rules


def test_the_application_connects_with_its_password_and_owns_its_database(host, pillar):
    passfile = "/tmp/kitchen-verifier.pgpass"
    line = f"127.0.0.1:5432:{pillar['dbname']}:{pillar['app']['owner']}:{pillar['passwords']['app']}\n"
    host.check("sh", "-c", f"umask 077 && cat > {passfile}", input=line)
    try:
        owner = host.check(
            "env", f"PGPASSFILE={passfile}", "psql", "-h", "127.0.0.1", "-p", "5432",
            "-U", pillar["app"]["owner"], "-d", pillar["dbname"], "-XAtc", OWNER_QUERY,
        )  # fmt: skip
    finally:
        host.run("rm", "-f", passfile)
    assert owner.strip() == pillar["app"]["owner"]
