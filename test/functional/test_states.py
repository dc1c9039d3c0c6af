"""The state module against a real monitor and nodes: test mode, create, re-run, change, removal."""

import copy
import os
import subprocess

import pytest
import salt.loader
from saltfactories.utils.functional import Loaders

from helpers.local_cluster import BINDIR, NODE_OPTIONS, free_port
from lab.paths import REPO


@pytest.fixture(scope="module")
def spare_monitor(local_cluster):
    return {"pgdata": local_cluster.pgdata("monitor2"), "port": free_port()}


def monitor_args(spare_monitor, **overrides):
    args = {"hostname": "127.0.0.1", "port": spare_monitor["port"], "auth": "trust", "ssl": "self-signed"}
    return {**args, **overrides}


def test_monitor_present_in_test_mode_changes_nothing(states, modules, spare_monitor):
    ret = states.pgfailover.monitor_present(spare_monitor["pgdata"], test=True, **monitor_args(spare_monitor))
    assert ret.result is None
    assert ret.changes["monitor"]["new"] == f"127.0.0.1:{spare_monitor['port']}"
    assert "would be created" in ret.comment
    assert not os.path.exists(spare_monitor["pgdata"])


def test_monitor_present_creates_then_reports_no_changes(states, modules, spare_monitor):
    ret = states.pgfailover.monitor_present(spare_monitor["pgdata"], **monitor_args(spare_monitor))
    assert ret.result is True and ret.changes
    assert modules.pgfailover.is_created(pgdata=spare_monitor["pgdata"])
    again = states.pgfailover.monitor_present(spare_monitor["pgdata"], **monitor_args(spare_monitor))
    assert again.result is True and again.changes == {}
    predicted = states.pgfailover.monitor_present(
        spare_monitor["pgdata"], test=True, **monitor_args(spare_monitor)
    )
    assert predicted.result is True and predicted.changes == {}


def test_monitor_present_refuses_a_different_port(states, spare_monitor):
    ret = states.pgfailover.monitor_present(spare_monitor["pgdata"], **monitor_args(spare_monitor, port=1))
    assert ret.result is False and ret.changes == {}
    assert "port=" in ret.comment and "does not change this in place" in ret.comment


def node3_args(formation):
    return {
        **NODE_OPTIONS,
        "port": formation.node3_port,
        "pgdata": formation.cluster.pgdata("node3"),
        "monitor_uri": formation.monitor_uri,
    }


@pytest.fixture(scope="module")
def node3(formation):
    formation.node3_port = free_port()
    return node3_args(formation)


def test_node_present_in_test_mode_changes_nothing(states, node3):
    ret = states.pgfailover.node_present("node3", test=True, **node3)
    assert ret.result is None and ret.changes["node"]["new"] == f"127.0.0.1:{node3['port']}"
    assert not os.path.exists(node3["pgdata"])


def join_args(node3):
    return {key: value for key, value in node3.items() if key not in NODE_OPTIONS and key != "port"}


def test_ready_to_join_in_test_mode_waits_for_nothing(states, node3):
    ret = states.pgfailover.ready_to_join("node3", first_node="node1", test=True, **join_args(node3))
    assert ret.result is None and ret.changes == {}
    assert "would wait for a primary that accepts the replicator" in ret.comment


@pytest.mark.parametrize(
    "first_node, answers",
    [("node3", "the monitor"), ("node1", "a primary that accepts the replicator")],
    ids=["the first node waits for the monitor only", "another node waits for a primary"],
)
def test_ready_to_join_waits_for_what_the_node_needs(states, node3, first_node, answers):
    ret = states.pgfailover.ready_to_join("node3", first_node=first_node, **join_args(node3))
    assert ret.result is True and ret.changes == {}, ret.comment
    assert ret.comment == f"Node node3 can be created: {answers} answers."


def test_ready_to_join_the_first_node_fails_when_no_monitor_answers(states, node3):
    args = {
        **join_args(node3),
        "monitor_uri": f"postgres://autoctl_node@127.0.0.1:{free_port()}/pg_auto_failover",
    }
    ret = states.pgfailover.ready_to_join("node3", first_node="node3", timeout=1, **args)
    assert ret.result is False and ret.changes == {}
    assert "Node node3 cannot be created yet: the monitor did not answer within 1 s" in ret.comment


def test_ready_to_join_fails_with_the_primary_s_refusal(states, modules, formation, node3):
    # verify-full without a root certificate: a refusal produced for real.
    ret = states.pgfailover.ready_to_join(
        "node3", first_node="node1", timeout=1, sslmode="verify-full", **join_args(node3)
    )
    primary = modules.pgfailover.primary(pgdata=formation.monitor)["nodename"]
    assert ret.result is False and ret.changes == {}
    assert "(node node1, first in the pillar, starts a formation)" in ret.comment
    assert f"no primary accepted pgautofailover_replicator within 1 s: {primary} refused" in ret.comment
    assert "root certificate file" in ret.comment


def test_node_present_creates_a_secondary(states, modules, formation, node3):
    ret = states.pgfailover.node_present("node3", candidate_priority=40, **node3)
    assert ret.result is True, ret.comment
    assert ret.changes["candidate_priority"] == 40
    formation.cluster.start(node3["pgdata"])
    node = modules.pgfailover.wait_node_state("node3", "secondary", timeout=120, pgdata=formation.monitor)
    assert node["candidate_priority"] == 40


def test_node_present_second_run_and_test_mode_report_no_changes(states, node3):
    again = states.pgfailover.node_present("node3", candidate_priority=40, **node3)
    assert again.result is True and again.changes == {}, again.comment
    predicted = states.pgfailover.node_present("node3", candidate_priority=40, test=True, **node3)
    assert predicted.result is True and predicted.changes == {}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"dbname": "otherdb"}, "dbname='postgres' where the state asks 'otherdb'"),
        ({"ssl": "none"}, "ssl={'mode': 'self-signed'} where the state asks {'mode': 'none'}"),
    ],
    ids=["dbname", "ssl-mode"],
)
def test_node_present_refuses_what_it_cannot_change_instead_of_reporting_success(
    states, node3, change, named
):
    """A changed dbname or SSL mode of an existing node was silently ignored: now it is a clear failure."""
    ret = states.pgfailover.node_present("node3", candidate_priority=40, **{**node3, **change})
    assert ret.result is False and ret.changes == {}, ret.comment
    assert named in ret.comment, ret.comment
    if "ssl" in change:
        assert "pgfailover.orch.ssl" in ret.comment


def test_ready_to_join_an_existing_node_waits_for_nothing(states, node3):
    ret = states.pgfailover.ready_to_join("node3", first_node="node1", timeout=0, **join_args(node3))
    assert ret.result is True and ret.changes == {}
    assert ret.comment == "Node node3 exists: nothing to wait for."


def test_node_present_converges_priority_and_quorum(states, modules, formation, node3):
    # The monitor raised number_sync_standbys to 1 when the second standby
    # joined; with it, node3 could not leave the quorum (tested below).
    modules.pgfailover.set_number_sync_standbys(0, pgdata=formation.monitor)
    predicted = states.pgfailover.node_present(
        "node3", candidate_priority=10, replication_quorum=False, test=True, **node3
    )
    assert predicted.result is None
    assert predicted.changes == {
        "candidate_priority": {"old": 40, "new": 10},
        "replication_quorum": {"old": True, "new": False},
    }
    ret = states.pgfailover.node_present("node3", candidate_priority=10, replication_quorum=False, **node3)
    assert ret.result is True and ret.changes == predicted.changes
    node = next(n for n in modules.pgfailover.state(pgdata=formation.monitor) if n["nodename"] == "node3")
    assert (node["candidate_priority"], node["replication_quorum"]) == (10, False)
    back = states.pgfailover.node_present("node3", candidate_priority=50, replication_quorum=True, **node3)
    assert back.result is True and set(back.changes) == {"candidate_priority", "replication_quorum"}
    modules.pgfailover.wait_converged(timeout=60, pgdata=formation.monitor)


def test_node_present_reports_a_quorum_change_the_monitor_refuses(states, modules, formation, node3):
    modules.pgfailover.set_number_sync_standbys(1, pgdata=formation.monitor)
    ret = states.pgfailover.node_present("node3", replication_quorum=False, **node3)
    assert ret.result is False and "replication quorum" in ret.comment
    node = next(n for n in modules.pgfailover.state(pgdata=formation.monitor) if n["nodename"] == "node3")
    assert node["replication_quorum"] is True


def test_node_present_refuses_a_data_directory_of_another_cluster(states, modules, formation, local_cluster):
    foreign = local_cluster.pgdata("foreign")
    subprocess.run(
        ["runuser", "-u", "postgres", "--", f"{BINDIR}/initdb", "-D", foreign, "-A", "peer"],
        check=True,
        capture_output=True,
    )
    args = {**node3_args(formation), "port": free_port(), "pgdata": foreign}
    ret = states.pgfailover.node_present("foreign", **args)
    assert ret.result is False and "belongs to another cluster" in ret.comment, ret.comment
    assert str(modules.pgfailover.system_identifier(pgdata=foreign)) in ret.comment
    assert "foreign" not in [n["nodename"] for n in modules.pgfailover.state(pgdata=formation.monitor)]
    assert not modules.pgfailover.is_created(pgdata=foreign)


def test_node_present_refuses_another_name_on_the_same_data(states, node3):
    ret = states.pgfailover.node_present("node4", **node3)
    assert ret.result is False and "name='node3'" in ret.comment


def test_converged_state_never_reports_changes(states, formation):
    ret = states.pgfailover.converged("default", timeout=60, expect_nodes=3, pgdata=formation.monitor)
    assert ret.result is True and ret.changes == {}
    assert "node3" in ret.comment


def test_converged_state_fails_with_the_state_table(states, formation):
    ret = states.pgfailover.converged("default", timeout=1, expect_nodes=9, pgdata=formation.monitor)
    assert ret.result is False and "node1" in ret.comment and "primary/primary" in ret.comment


def test_formation_present_sets_number_sync_standbys(states, modules, formation):
    modules.pgfailover.set_number_sync_standbys(0, pgdata=formation.monitor)
    args = {"number_sync_standbys": 1, "pgdata": formation.monitor}
    predicted = states.pgfailover.formation_present("default", test=True, **args)
    assert predicted.result is None and predicted.changes == {"number_sync_standbys": {"old": 0, "new": 1}}
    ret = states.pgfailover.formation_present("default", **args)
    assert ret.result is True and ret.changes == predicted.changes
    assert modules.pgfailover.number_sync_standbys(pgdata=formation.monitor) == 1
    again = states.pgfailover.formation_present("default", **args)
    assert again.result is True and again.changes == {}
    back = states.pgfailover.formation_present("default", number_sync_standbys=0, pgdata=formation.monitor)
    assert back.changes == {"number_sync_standbys": {"old": 1, "new": 0}}


def test_formation_present_creates_a_formation(states, modules, formation):
    args = {"dbname": "analytics", "pgdata": formation.monitor}
    ret = states.pgfailover.formation_present("analytics", **args)
    assert ret.result is True and ret.changes["formation"]["new"]["dbname"] == "analytics"
    assert states.pgfailover.formation_present("analytics", **args).changes == {}
    wrong = states.pgfailover.formation_present("analytics", dbname="other", pgdata=formation.monitor)
    assert wrong.result is False and "cannot change" in wrong.comment


def test_maintenance_state_round_trip(states, modules, formation, node3):
    conn = {"pgdata": node3["pgdata"]}
    predicted = states.pgfailover.maintenance("node3", enabled=True, test=True, **conn)
    assert predicted.result is None and predicted.changes["maintenance"] == {"old": False, "new": True}
    ret = states.pgfailover.maintenance("node3", enabled=True, **conn)
    assert ret.result is True and ret.changes["maintenance"]["new"] is True
    modules.pgfailover.wait_node_state("node3", "maintenance", timeout=60, **conn)
    assert states.pgfailover.maintenance("node3", enabled=True, **conn).changes == {}
    out = states.pgfailover.maintenance("node3", enabled=False, **conn)
    assert out.result is True and out.changes["maintenance"] == {"old": True, "new": False}
    modules.pgfailover.wait_node_state("node3", "secondary", timeout=90, **conn)
    assert states.pgfailover.maintenance("node3", enabled=False, **conn).changes == {}


def test_monitor_settings_state(states, modules, formation):
    args = {"settings": {"health_check_max_retries": 3}, "pgdata": formation.monitor}
    predicted = states.pgfailover.monitor_settings("monitor", test=True, **args)
    assert predicted.result is None and predicted.changes == {
        "health_check_max_retries": {"old": 2, "new": 3}
    }
    ret = states.pgfailover.monitor_settings("monitor", **args)
    assert ret.result is True and ret.changes == predicted.changes
    assert modules.pgfailover.monitor_settings(pgdata=formation.monitor)["health_check_max_retries"] == 3
    assert states.pgfailover.monitor_settings("monitor", **args).changes == {}
    bad = states.pgfailover.monitor_settings(
        "monitor", settings={"health_check_perod": 1}, pgdata=formation.monitor
    )
    assert bad.result is False and "health_check_period" in bad.comment
    states.pgfailover.monitor_settings(
        "monitor", settings={"health_check_max_retries": 2}, pgdata=formation.monitor
    )


def test_monitor_settings_increase_only_never_lowers(states, modules, formation):
    args = {"increase_only": True, "pgdata": formation.monitor}
    lower = states.pgfailover.monitor_settings("demote", settings={"primary_demote_timeout": 5000}, **args)
    assert lower.result is True and lower.changes == {}
    raised = states.pgfailover.monitor_settings("demote", settings={"primary_demote_timeout": 31000}, **args)
    assert raised.changes == {"primary_demote_timeout": {"old": 30000, "new": 31000}}
    assert modules.pgfailover.monitor_settings(pgdata=formation.monitor)["primary_demote_timeout"] == 31000
    states.pgfailover.monitor_settings(
        "demote", settings={"primary_demote_timeout": 30000}, pgdata=formation.monitor
    )


def test_config_value_sets_a_key_and_the_running_service_takes_it(states, modules, formation):
    conn = {"pgdata": formation.nodes["node2"]["pgdata"]}
    key = "timeout.network_partition_timeout"
    predicted = states.pgfailover.config_value(key, value=7, test=True, **conn)
    assert predicted.result is None and predicted.changes == {key: {"old": 20, "new": 7}}
    ret = states.pgfailover.config_value(key, value=7, **conn)
    assert ret.result is True and modules.pgfailover.config_get(key, **conn) == 7
    assert states.pgfailover.config_value(key, value=7, **conn).changes == {}
    assert states.pgfailover.config_value(key, value=20, **conn).changes == {key: {"old": 7, "new": 20}}
    secret = states.pgfailover.config_value("replication.password", value="x", **conn)
    assert secret.result is False and "secret" in secret.comment


def test_node_absent_refuses_the_primary(states, formation):
    ret = states.pgfailover.node_absent("node1", pgdata=formation.nodes["node1"]["pgdata"])
    assert ret.result is False and "switchover" in ret.comment and ret.changes == {}


def test_node_absent_drops_and_keeps_data(states, modules, formation, node3):
    conn = {"pgdata": node3["pgdata"]}
    monitor = {"pgdata": formation.monitor}
    modules.pgfailover.set_number_sync_standbys(1, **monitor)  # two standbys: node2, node3
    modules.pgfailover.wait_converged(timeout=60, **monitor)
    predicted = states.pgfailover.node_absent("node3", test=True, **conn)
    assert predicted.result is None and "data directory kept" in predicted.comment
    ret = states.pgfailover.node_absent("node3", **conn)
    assert ret.result is True, ret.comment
    assert ret.changes == {"node": {"old": "node3", "new": None}, "destroyed": False}
    names = [n["nodename"] for n in modules.pgfailover.state(pgdata=formation.monitor)]
    assert "node3" not in names
    assert os.path.exists(os.path.join(node3["pgdata"], "PG_VERSION"))
    again = states.pgfailover.node_absent("node3", **conn)
    assert again.result is True and again.changes == {}
    # The monitor lowered number_sync_standbys itself; node2 is now the last standby.
    assert modules.pgfailover.number_sync_standbys(**monitor) == 0
    node2 = {"pgdata": formation.nodes["node2"]["pgdata"]}
    last = states.pgfailover.node_absent("node2", **node2)
    assert last.result is False and "last standby of the primary" in last.comment, last.comment
    assert "node2" in [n["nodename"] for n in modules.pgfailover.state(**monitor)]
    allowed = states.pgfailover.node_absent("node2", allow_last_standby=True, test=True, **node2)
    assert allowed.result is None and "would be dropped" in allowed.comment


def test_role_present_reads_the_password_from_pillar(loaders, states, modules, formation):
    loaders.opts["pillar"] = {"secrets": {"reporting": "pillar-Secret-9"}}
    pgdata = formation.nodes["node1"]["pgdata"]
    args = {"password_pillar": "secrets:reporting", "pgdata": pgdata}
    predicted = states.pgfailover.role_present("reporting", test=True, **args)
    assert predicted.result is None and predicted.changes == {"role": {"old": None, "new": "reporting"}}
    ret = states.pgfailover.role_present("reporting", **args)
    assert ret.result is True and ret.changes == {"role": {"old": None, "new": "reporting"}}
    assert "pillar-Secret-9" not in str(ret.raw)
    assert modules.pgfailover.role_password_matches("reporting", "pillar-Secret-9", pgdata=pgdata)
    assert states.pgfailover.role_present("reporting", **args).changes == {}
    on_standby = states.pgfailover.role_present(
        "reporting", **{**args, "pgdata": formation.nodes["node2"]["pgdata"]}
    )
    assert on_standby.result is True and on_standby.changes == {} and "standby" in on_standby.comment
    missing = states.pgfailover.role_present("reporting", password_pillar="secrets:nope", pgdata=pgdata)
    assert missing.result is False and "secrets:nope" in missing.comment


def test_node_absent_with_destroy_removes_the_data(states, modules, formation, local_cluster):
    pgdata = formation.add_node(modules, "node8", candidate_priority=0)
    modules.pgfailover.wait_node_state("node8", "secondary", timeout=120, pgdata=formation.monitor)
    ret = states.pgfailover.node_absent("node8", destroy=True, pgdata=pgdata)
    assert ret.result is True and ret.changes["destroyed"] is True, ret.comment
    assert not os.path.exists(os.path.join(pgdata, "PG_VERSION"))
    local_cluster.stop(pgdata)
    modules.pgfailover.wait_converged(timeout=90, pgdata=formation.monitor)


def test_without_pg_autoctl_node_absent_has_nothing_to_do_and_other_states_say_why(minion_opts, tmp_path):
    """A host cleaned already: the packages are gone, so the execution module is not loaded."""
    opts = copy.deepcopy(minion_opts)
    missing = str(tmp_path / "bin" / "pg_autoctl")
    opts["pgfailover"] = {"pg_autoctl": missing}
    states = Loaders(opts).states
    gone = states.pgfailover.node_absent("node1", pgdata=str(tmp_path / "node1"))
    assert gone.result is True and gone.changes == {}, gone.comment
    assert gone.comment.count(f"pg_autoctl not found at {missing}") == 1, gone.comment
    assert "pgfailover.drop_node name=node1 force=True" in gone.comment
    refused = states.pgfailover.node_ready("node1", pgdata=str(tmp_path / "node1"))
    assert refused.result is False and refused.comment.count(f"pg_autoctl not found at {missing}") == 1


@pytest.fixture(scope="module")
def bare_host_states(minion_opts, tmp_path_factory):
    """
    The state module on a host not built yet: no pg_autoctl, so no execution
    module. One loader for every dry run (building a loader takes seconds).
    """
    opts = copy.deepcopy(minion_opts)
    opts["pgfailover"] = {"pg_autoctl": str(tmp_path_factory.mktemp("bare") / "bin" / "pg_autoctl")}
    opts["pillar"] = {"secrets": {"app": "pillar-Secret-9"}}
    return Loaders(opts).states


# Every pgfailover state as the formula and its orchestrations call it.
CREATE = {"auth": "scram-sha-256", "ssl": "self-signed"}
MONITOR_URI = "postgres://autoctl_node@mon:5431/pg_auto_failover"
DRY_RUN_CALLS = [
    ("monitor_present", ("/srv/mon",), {"hostname": "mon", "port": 5431, **CREATE}),
    ("node_present", ("pg1",), {"hostname": "pg1", "pgdata": "/srv/pg1", **CREATE}),
    ("formation_present", ("default",), {"number_sync_standbys": 1, "pgdata": "/srv/mon"}),
    ("maintenance", ("pg1",), {"enabled": True, "pgdata": "/srv/pg1"}),
    ("monitor_settings", ("timing",), {"settings": {"primary_demote_timeout": 30000}, "pgdata": "/srv/mon"}),
    ("config_value", ("timeout.network_partition_timeout",), {"value": 20, "pgdata": "/srv/pg1"}),
    ("converged", ("default",), {"pgdata": "/srv/mon"}),
    ("monitor_ready", ("/srv/mon",), {}),
    ("ready_to_join", ("pg2",), {"first_node": "pg1", "monitor_uri": MONITOR_URI, "pgdata": "/srv/pg2"}),
    ("node_ready", ("pg1",), {"pgdata": "/srv/pg1"}),
    ("role_present", ("app",), {"password_pillar": "secrets:app", "pgdata": "/srv/pg1"}),
    ("settings_applied", ("pgautofailover-node-pg1",), {"names": ["work_mem"], "pgdata": "/srv/pg1"}),
    ("reloaded", ("pg_hba.conf",), {"pgdata": "/srv/pg1"}),
]  # fmt: skip


@pytest.mark.parametrize(("function", "args", "kwargs"), DRY_RUN_CALLS, ids=[c[0] for c in DRY_RUN_CALLS])
def test_every_state_answers_a_dry_run_on_a_bare_host(bare_host_states, function, args, kwargs):
    """test=True on a host without pg_autoctl: result None and what would be done, never a failure."""
    ret = getattr(bare_host_states.pgfailover, function)(*args, test=True, **kwargs)
    assert ret.result is None, ret.comment
    assert "would" in ret.comment.lower() and "not installed yet" in ret.comment, ret.comment


@pytest.mark.parametrize(
    ("function", "args", "kwargs"),
    [
        c
        for c in DRY_RUN_CALLS
        if c[0] in ("monitor_settings", "monitor_ready", "formation_present", "converged")
    ],
    ids=["formation_present", "monitor_settings", "converged", "monitor_ready"],
)
def test_monitor_states_answer_a_dry_run_before_the_monitor_exists(
    states, local_cluster, function, args, kwargs
):
    """pg_autoctl installed, the monitor not created yet: no KeyError, result None."""
    pgdata = local_cluster.pgdata("monitor-not-created")
    kwargs = {**kwargs, "pgdata": pgdata} if "pgdata" in kwargs else kwargs
    args = (pgdata,) if function == "monitor_ready" else args
    ret = getattr(states.pgfailover, function)(*args, test=True, **kwargs)
    assert ret.result is None and "not created yet" in ret.comment, ret.comment


def test_monitoring_role_is_unprivileged_limited_and_converges(states, modules, formation):
    """The health endpoint's role: pg_monitor, no superuser, no password, a connection limit; re-run quiet."""
    primary = formation.nodes["node1"]["pgdata"]
    ret = states.pgfailover.monitoring_role_present("health_probe", connection_limit=4, pgdata=primary)
    assert ret.result is True and ret.changes == {"role": {"old": None, "new": "health_probe"}}, ret.comment
    role = modules.pgfailover.role("health_probe", pgdata=primary)
    assert role == {
        "login": True, "password_set": False, "superuser": False, "connection_limit": 4, "pg_monitor": True,
        "reads_formation": False,
    }  # fmt: skip
    assert (
        states.pgfailover.monitoring_role_present("health_probe", connection_limit=4, pgdata=primary).changes
        == {}
    )
    changed = states.pgfailover.monitoring_role_present("health_probe", connection_limit=2, pgdata=primary)
    assert changed.changes == {"connection_limit": {"old": 4, "new": 2}}, changed.comment
    standby = formation.nodes["node2"]["pgdata"]
    on_standby = states.pgfailover.monitoring_role_present("health_probe", connection_limit=2, pgdata=standby)
    assert on_standby.result is True and on_standby.changes == {} and "standby" in on_standby.comment


def test_the_monitors_metrics_role_reads_the_node_and_formation_tables_and_nothing_more(
    states, modules, formation
):
    """The exporter's role on the monitor: it reads the formation, cannot change it, and converges."""
    monitor = formation.monitor
    ret = states.pgfailover.monitoring_role_present(
        "metrics_probe", connection_limit=3, read_formation=True, pgdata=monitor
    )
    assert ret.result is True and ret.changes == {"role": {"old": None, "new": "metrics_probe"}}, ret.comment
    role = modules.pgfailover.role("metrics_probe", dbname="pg_auto_failover", pgdata=monitor)
    assert role["reads_formation"] is True and role["superuser"] is False and role["pg_monitor"] is True
    again = states.pgfailover.monitoring_role_present(
        "metrics_probe", connection_limit=3, read_formation=True, pgdata=monitor
    )
    assert again.changes == {}, again.comment
    with open(os.path.join(monitor, "postmaster.pid")) as f:
        lines = f.read().splitlines()
    port, socket_dir = lines[3], lines[4]

    def as_metrics_role(sql):
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", f"{BINDIR}/psql", "-h", socket_dir, "-p", port,
             "-d", "pg_auto_failover", "-Atc", f"SET ROLE metrics_probe; {sql}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    reading = as_metrics_role("SELECT count(*) FROM pgautofailover.node;")
    assert reading.returncode == 0 and int(reading.stdout.split()[-1]) >= 1, reading.stderr
    for forbidden in (
        "UPDATE pgautofailover.node SET candidatepriority = 0;",
        "SELECT count(*) FROM pgautofailover.event;",
    ):
        refused = as_metrics_role(forbidden)
        assert "permission denied" in refused.stderr, (forbidden, refused.stdout, refused.stderr)


# -- the beacon (_beacons/pgfailover.py), last in the functional run: it takes
# the secondary through maintenance and back, loaded by Salt's loader over the
# real execution module: its first reading is a baseline and fires nothing, an
# unchanged node fires nothing, each change of the node's current or assigned
# state fires one event with the previous states, and a monitor fires nothing.


@pytest.fixture
def beacons(minion_opts, local_cluster, modules):
    opts = copy.deepcopy(minion_opts)
    opts["pgfailover"] = local_cluster.conn()
    opts["beacons_dirs"] = [os.path.join(REPO, "_beacons")]
    return salt.loader.beacons(opts, modules, context={})


def test_the_configuration_is_checked(beacons):
    validate = beacons["pgfailover.validate"]
    assert validate([{"interval": 2}, {"pgdata": "/var/lib/postgresql/pgaf/pg1"}])[0] is True
    valid, message = validate([{"interval": 2}, {"pgdta": "/x"}])
    assert valid is False and "unknown key(s) pgdta" in message
    assert validate({"interval": 2})[0] is False


def test_one_event_per_state_change_none_for_the_baseline_or_the_monitor(beacons, modules, formation):
    beacon = beacons["pgfailover.beacon"]
    pgdata = formation.nodes["node2"]["pgdata"]
    config = [{"interval": 1}, {"pgdata": pgdata}]
    modules.pgfailover.wait_converged(timeout=60, pgdata=formation.monitor)
    assert beacon(config) == []  # the baseline
    assert beacon(config) == []  # nothing changed
    assert beacon([{"interval": 1}, {"pgdata": formation.monitor}]) == []
    modules.pgfailover.enable_maintenance(pgdata=pgdata)
    try:
        modules.pgfailover.wait_node_state("node2", "maintenance", timeout=60, pgdata=pgdata)
        events = beacon(config)
    finally:
        modules.pgfailover.disable_maintenance(pgdata=pgdata)
        modules.pgfailover.wait_node_state("node2", "secondary", timeout=60, pgdata=pgdata)
        # The primary goes back from wait_primary too: the next tests expect the formation as it was.
        modules.pgfailover.wait_converged(timeout=90, pgdata=formation.monitor)
    assert len(events) == 1, events
    event = events[0]
    assert event["node"] == "node2" and event["tag"] == f"state/{event['current_group_state']}"
    assert (event["previous_current_group_state"], event["previous_assigned_group_state"]) == (
        "secondary",
        "secondary",
    )
    assert "maintenance" in (event["current_group_state"], event["assigned_group_state"])
    back = beacon(config)
    assert len(back) == 1 and back[0]["current_group_state"] == "secondary", back
    assert beacon(config) == []
