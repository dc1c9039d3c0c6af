"""The execution module against a real monitor and two nodes."""

import json
import os
import subprocess

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from helpers.local_cluster import NODE_OPTIONS, free_port
from helpers.waiting import wait_until


def test_version_reports_pg_autoctl_and_postgres(modules):
    version = modules.pgfailover.version()
    assert version["pg_autoctl"].startswith("2.")
    assert version["pg_major"] == "15"


def test_create_functions_leave_complete_instances(modules, formation):
    for pgdata in (formation.monitor, *(n["pgdata"] for n in formation.nodes.values())):
        assert modules.pgfailover.is_created(pgdata=pgdata), pgdata


def test_is_created_is_false_for_an_empty_directory(modules, local_cluster):
    assert modules.pgfailover.is_created(pgdata=local_cluster.pgdata("never-created")) is False


def test_state_lists_primary_and_secondary(modules, formation):
    nodes = modules.pgfailover.state(pgdata=formation.monitor)
    by_name = {n["nodename"]: n for n in nodes}
    assert set(by_name) == {"node1", "node2"}
    assert by_name["node1"]["current_group_state"] == "primary"
    assert by_name["node2"]["current_group_state"] == "secondary"
    assert by_name["node2"]["nodeport"] == formation.nodes["node2"]["port"]


def test_state_through_monitor_uri_matches_local_pgdata(modules, formation):
    via_uri = modules.pgfailover.state(monitor_uri=formation.monitor_uri)
    via_pgdata = modules.pgfailover.state(pgdata=formation.nodes["node2"]["pgdata"])
    assert [n["nodename"] for n in via_uri] == [n["nodename"] for n in via_pgdata]


def test_local_state_reads_the_files_and_leaves_the_services_orders_alone(modules, formation, local_cluster):
    """
    pg_autoctl 2.0's `show state --local` deletes the running service's order
    file to its PostgreSQL controller (pg_autoctl.pg): a failover that meets it
    stalls 10 s (the formula's beacon ran it every second). state(local=True)
    reads the configuration and state files instead and answers the same.
    """
    pgdata = formation.nodes["node2"]["pgdata"]
    argv = ["show", "state", "--local", "--json", "--pgdata", pgdata]
    shown = json.loads(local_cluster.pg_autoctl(*argv).stdout)
    local = modules.pgfailover.state(local=True, pgdata=pgdata)
    assert (local["nodename"], local["current_group_state"], local["assigned_group_state"]) == (
        "node2",
        "secondary",
        "secondary",
    )
    assert local["writable"] is False and local["formation"] == "default"
    assert modules.pgfailover.state(local=True, pgdata=formation.nodes["node1"]["pgdata"])["writable"] is True
    common = set(local) & set(shown)
    assert {"nodename", "current_group_state", "assigned_group_state"} <= common, shown
    assert {key: local[key] for key in common} == {key: shown[key] for key in common}
    orders = os.path.join(local_cluster.runtime_dir, "pg_autoctl", pgdata.lstrip("/"), "pg_autoctl.pg")
    local_cluster.stop(pgdata)  # nobody rewrites the file meanwhile
    try:
        with open(orders, "wb") as f:
            f.write(b"\0" * 512)
        for _ in range(3):
            modules.pgfailover.state(local=True, pgdata=pgdata)
        assert os.path.exists(orders)
        local_cluster.pg_autoctl("show", "state", "--local", "--pgdata", pgdata)
        assert not os.path.exists(orders), "show state --local no longer deletes it: update the known issues"
    finally:
        if os.path.exists(orders):
            os.unlink(orders)
        local_cluster.start(pgdata)
        modules.pgfailover.wait_converged(timeout=120, pgdata=formation.monitor)
        # Converged states are not enough for the next tests: until the monitor's
        # health check sees node2 again, its synchronous_standby_names is empty.
        wait_until(
            lambda: all(node["health"] == 1 for node in modules.pgfailover.state(pgdata=formation.monitor)),
            60,
            "the monitor sees every node healthy again",
        )


def test_primary_and_converged(modules, formation):
    assert modules.pgfailover.primary(pgdata=formation.monitor)["nodename"] == "node1"
    # A loaded machine can catch a health check in flight: settled first, then asked.
    modules.pgfailover.wait_converged(timeout=60, pgdata=formation.monitor)
    assert modules.pgfailover.converged(pgdata=formation.monitor) is True


def test_wait_for_primary_returns_the_primary_once_the_replicator_gets_in(modules, formation):
    node = modules.pgfailover.wait_for_primary(timeout=10, monitor_uri=formation.monitor_uri)
    assert node["nodename"] == modules.pgfailover.primary(pgdata=formation.monitor)["nodename"]


def test_wait_for_primary_of_a_formation_without_nodes_times_out_with_the_reason(modules, formation):
    with pytest.raises(CommandExecutionError, match="within 0 s: no node is primary yet"):
        modules.pgfailover.wait_for_primary(timeout=0, formation="empty", monitor_uri=formation.monitor_uri)


def test_uri_gives_monitor_and_formation_uri(modules, formation):
    uris = modules.pgfailover.uri(pgdata=formation.monitor)
    assert uris["monitor"] == formation.monitor_uri
    ports = {str(n["port"]) for n in formation.nodes.values()}
    assert all(f"127.0.0.1:{port}" in uris["formation"] for port in ports)
    assert "target_session_attrs=read-write" in uris["formation"]


def test_wait_monitor_with_a_formation_waits_until_the_monitor_holds_it(modules, formation, local_cluster):
    """The first node of a formation other than default waits for it (the monitor's host creates it)."""
    with pytest.raises(
        CommandExecutionError, match="the monitor answers but has no formation sales after 1 s"
    ):
        modules.pgfailover.wait_monitor(timeout=1, formation="sales", pgdata=formation.monitor)
    modules.pgfailover.create_formation("sales", dbname="sales", pgdata=formation.monitor)
    try:
        # asked as a node does, through the monitor's URI
        answer = modules.pgfailover.wait_monitor(
            timeout=10, formation="sales", monitor_uri=formation.monitor_uri
        )
        assert answer == formation.monitor_uri
        assert modules.pgfailover.formation("sales", pgdata=formation.monitor)["dbname"] == "sales"
    finally:
        modules.pgfailover.drop_formation("sales", pgdata=formation.monitor)
    assert modules.pgfailover.formation("sales", pgdata=formation.monitor) is None


def test_events_settings_standby_names(modules, formation):
    events = modules.pgfailover.events(count=5, pgdata=formation.monitor)
    assert 0 < len(events) <= 5 and "description" in events[0]
    settings = modules.pgfailover.settings(pgdata=formation.monitor)
    assert {row["setting"] for row in settings["nodes"]} == {"candidate priority", "replication quorum"}

    def standby_named():  # empty while the monitor still settles the earlier tests' restart of node2
        names = modules.pgfailover.standby_names(pgdata=formation.monitor)["synchronous_standby_names"]
        return "pgautofailover_standby_" in names

    wait_until(standby_named, 60, "the monitor names node2 in synchronous_standby_names")


def test_status_of_a_running_node(modules, formation):
    status = modules.pgfailover.status(pgdata=formation.nodes["node1"]["pgdata"])
    assert status["pg_autoctl"]["status"] == "running"
    assert status["postgres"]["in_recovery"] is False


def test_config_get_whole_and_one_key(modules, formation):
    pgdata = formation.nodes["node2"]["pgdata"]
    config = modules.pgfailover.config_get(pgdata=pgdata)
    assert config["pg_autoctl"]["name"] == "node2"
    assert modules.pgfailover.config_get("postgresql.port", pgdata=pgdata) == formation.nodes["node2"]["port"]
    with pytest.raises(SaltInvocationError, match="not in the configuration"):
        modules.pgfailover.config_get("postgresql.nope", pgdata=pgdata)


def test_config_set_changes_a_timeout(modules, formation):
    pgdata = formation.nodes["node2"]["pgdata"]
    modules.pgfailover.config_set("timeout.network_partition_timeout", 25, pgdata=pgdata)
    assert modules.pgfailover.config_get("timeout.network_partition_timeout", pgdata=pgdata) == 25
    modules.pgfailover.config_set("timeout.network_partition_timeout", 20, pgdata=pgdata)


def test_systemd_unit_runs_pg_autoctl(modules, formation):
    unit = modules.pgfailover.systemd_unit(pgdata=formation.monitor)
    assert "ExecStart = /usr/bin/pg_autoctl run" in unit


def test_monitor_settings_round_trip(modules, formation):
    before = modules.pgfailover.monitor_settings(pgdata=formation.monitor)
    assert before["health_check_period"] == 5000
    changes = modules.pgfailover.set_monitor_settings({"health_check_period": 4000}, pgdata=formation.monitor)
    assert changes == {"health_check_period": {"old": 5000, "new": 4000}}
    assert modules.pgfailover.monitor_settings(pgdata=formation.monitor)["health_check_period"] == 4000
    assert (
        modules.pgfailover.set_monitor_settings({"health_check_period": 4000}, pgdata=formation.monitor) == {}
    )
    modules.pgfailover.set_monitor_settings({"health_check_period": 5000}, pgdata=formation.monitor)


def test_candidate_priority_and_replication_quorum(modules, formation):
    pgdata = formation.nodes["node2"]["pgdata"]
    modules.pgfailover.set_candidate_priority(30, pgdata=pgdata)
    modules.pgfailover.set_replication_quorum(False, pgdata=pgdata)
    node = next(n for n in modules.pgfailover.state(pgdata=pgdata) if n["nodename"] == "node2")
    assert (node["candidate_priority"], node["replication_quorum"]) == (30, False)
    modules.pgfailover.set_candidate_priority(50, pgdata=pgdata)
    modules.pgfailover.set_replication_quorum(True, pgdata=pgdata)
    modules.pgfailover.wait_converged(timeout=60, pgdata=pgdata)


def test_number_sync_standbys_needs_enough_standbys(modules, formation):
    assert modules.pgfailover.number_sync_standbys(pgdata=formation.monitor) == 0
    with pytest.raises(CommandExecutionError, match="At least 2 standby nodes are required"):
        modules.pgfailover.set_number_sync_standbys(1, pgdata=formation.monitor)
    assert modules.pgfailover.number_sync_standbys(pgdata=formation.monitor) == 0


def test_formation_read_and_create(modules, formation):
    default = modules.pgfailover.formation("default", pgdata=formation.monitor)
    assert default == {"name": "default", "kind": "pgsql", "dbname": "postgres", "number_sync_standbys": 0}
    assert modules.pgfailover.formation("reporting", pgdata=formation.monitor) is None
    modules.pgfailover.create_formation("reporting", dbname="reports", pgdata=formation.monitor)
    assert modules.pgfailover.formation("reporting", pgdata=formation.monitor)["dbname"] == "reports"


def test_maintenance_round_trip_on_the_secondary(modules, formation):
    pgdata = formation.nodes["node2"]["pgdata"]
    modules.pgfailover.enable_maintenance(pgdata=pgdata)
    node = modules.pgfailover.wait_node_state("node2", "maintenance", timeout=60, pgdata=pgdata)
    assert node["assigned_group_state"] == "maintenance"
    modules.pgfailover.disable_maintenance(pgdata=pgdata)
    modules.pgfailover.wait_node_state("node2", "secondary", timeout=60, pgdata=pgdata)


def test_maintenance_on_the_primary_without_allow_failover_is_refused(modules, formation):
    with pytest.raises(CommandExecutionError, match="maintenance"):
        modules.pgfailover.enable_maintenance(pgdata=formation.nodes["node1"]["pgdata"])
    assert modules.pgfailover.primary(pgdata=formation.monitor)["nodename"] == "node1"


def test_switchover_then_promotion_back(modules, formation):
    result = modules.pgfailover.switchover(pgdata=formation.monitor, timeout=90)
    assert (result["old_primary"], result["new_primary"]) == ("node1", "node2")
    result = modules.pgfailover.promote("node1", pgdata=formation.monitor, timeout=90)
    assert (result["old_primary"], result["new_primary"]) == ("node2", "node1")


def test_drop_node_by_name_with_force_from_the_monitor(modules, formation, local_cluster):
    pgdata = formation.add_node(modules, "node9", candidate_priority=0)
    modules.pgfailover.wait_node_state("node9", "secondary", timeout=90, pgdata=formation.monitor)
    local_cluster.stop(pgdata)  # a dead host: only a forced drop by name removes it
    modules.pgfailover.drop_node(name="node9", force=True, pgdata=formation.monitor)
    names = [n["nodename"] for n in modules.pgfailover.state(pgdata=formation.monitor)]
    assert "node9" not in names
    assert os.path.exists(os.path.join(pgdata, "PG_VERSION")), "a drop by name never removes data"
    modules.pgfailover.wait_converged(timeout=60, pgdata=formation.monitor)


def test_failing_pg_autoctl_raises_with_its_own_message(modules, local_cluster):
    with pytest.raises(CommandExecutionError, match=r"pg_autoctl show state failed .*configuration file"):
        modules.pgfailover.state(pgdata=local_cluster.pgdata("never-created"))


def test_monitor_uri_with_a_password_is_refused_before_running(modules):
    with pytest.raises(SaltInvocationError, match="must not contain a password"):
        modules.pgfailover.state(monitor_uri="postgres://autoctl_node:secret@127.0.0.1:1/pg_auto_failover")


def test_in_recovery_wait_postgres_and_reload(modules, formation):
    assert modules.pgfailover.in_recovery(pgdata=formation.nodes["node1"]["pgdata"]) is False
    assert modules.pgfailover.in_recovery(pgdata=formation.nodes["node2"]["pgdata"]) is True
    assert modules.pgfailover.wait_postgres(timeout=10, pgdata=formation.monitor) is True
    assert modules.pgfailover.reload_postgres(pgdata=formation.nodes["node1"]["pgdata"]) is True


def test_role_password_is_stored_as_a_scram_verifier(modules, formation):
    pgdata = formation.nodes["node1"]["pgdata"]
    assert modules.pgfailover.role("reporter", pgdata=pgdata) is None
    modules.pgfailover.set_role_password("reporter", "first-Secret-1", create=True, pgdata=pgdata)
    reporter = modules.pgfailover.role("reporter", pgdata=pgdata)
    assert reporter["login"] is True and reporter["password_set"] is True and reporter["superuser"] is False
    assert modules.pgfailover.role_password_matches("reporter", "first-Secret-1", pgdata=pgdata) is True
    assert modules.pgfailover.role_password_matches("reporter", "other", pgdata=pgdata) is False
    modules.pgfailover.set_role_password("reporter", "second-Secret-2", pgdata=pgdata)
    assert modules.pgfailover.role_password_matches("reporter", "second-Secret-2", pgdata=pgdata) is True
    assert modules.pgfailover.database_owner("postgres", pgdata=pgdata) == "postgres"
    assert modules.pgfailover.database_owner("nope", pgdata=pgdata) is None


def test_mixed_case_and_punctuated_names_are_quoted_and_stay_converged(modules, formation):
    """CREATE/ALTER ROLE and ALTER DATABASE quote identifiers: App and App-DB are found again as written."""
    node = formation.nodes["node1"]
    pgdata = node["pgdata"]
    psql = ["runuser", "-u", "postgres", "--", "psql", "-XAt", "-p", str(node["port"]), "-d", "postgres"]
    subprocess.run([*psql, "-c", 'CREATE DATABASE "App-DB"'], check=True, capture_output=True, cwd="/")
    modules.pgfailover.set_role_password("App.Owner", "mixed-Case-Secret-3", create=True, pgdata=pgdata)
    assert modules.pgfailover.role("App.Owner", pgdata=pgdata)["password_set"] is True
    modules.pgfailover.set_database_owner("App-DB", "App.Owner", pgdata=pgdata)
    assert modules.pgfailover.database_owner("App-DB", pgdata=pgdata) == "App.Owner"
    # A second run finds what the first made (unquoted, PostgreSQL would have folded App to app).
    modules.pgfailover.set_role_password("App.Owner", "mixed-Case-Secret-4", pgdata=pgdata)
    assert modules.pgfailover.role_password_matches("App.Owner", "mixed-Case-Secret-4", pgdata=pgdata)


@pytest.mark.parametrize(
    "password",
    [
        "no-break\u00a0space-Secret",  # mapped to a space
        "soft\u00adhyphen-Secret",  # mapped to nothing
        "\ufb01ligature-Secret",  # NFKC: fi
        "caf\u0065\u0301-Secret",  # NFKC composes e + acute
        "bell\u0007caf\u00e9-Secret",  # prohibited: hashed as it is
        "plain-ascii Secret",
    ],
    ids=["nbsp", "soft-hyphen", "ligature", "combining", "prohibited", "ascii"],
)
def test_password_checks_agree_with_the_servers_saslprep(modules, formation, password):
    """role_password_matches reads a verifier the server built itself, so SASLprep must match PostgreSQL's."""
    node = formation.nodes["node1"]
    pgdata = node["pgdata"]
    psql = ["runuser", "-u", "postgres", "--", "psql", "-XAt", "-p", str(node["port"]), "-d", "postgres"]
    literal = password.replace("'", "''")
    sql = (
        "SET password_encryption = 'scram-sha-256'; DROP ROLE IF EXISTS prepped; "
        f"CREATE ROLE prepped PASSWORD '{literal}';"
    )
    subprocess.run(psql, input=sql, check=True, capture_output=True, text=True, cwd="/")
    assert modules.pgfailover.role_password_matches("prepped", password, pgdata=pgdata) is True
    assert modules.pgfailover.role_password_matches("prepped", password + "x", pgdata=pgdata) is False
    # And the other way round: the formula's verifier is one the server's check accepts.
    modules.pgfailover.set_role_password("prepped", password, pgdata=pgdata)
    assert modules.pgfailover.role_password_matches("prepped", password, pgdata=pgdata) is True


def test_failover_promotes_a_secondary(modules, formation):
    result = modules.pgfailover.failover(pgdata=formation.monitor, timeout=120)
    assert result["old_primary"] == "node1" and result["new_primary"] != "node1"
    back = modules.pgfailover.promote("node1", pgdata=formation.monitor, timeout=120)
    assert back["new_primary"] == "node1"


def test_drop_monitor_of_a_spare_monitor(modules, local_cluster):
    pgdata = local_cluster.pgdata("monitor-to-drop")
    modules.pgfailover.create_monitor("127.0.0.1", port=free_port(), auth="trust", ssl="none", pgdata=pgdata)
    assert modules.pgfailover.is_created(pgdata=pgdata)
    modules.pgfailover.drop_monitor(destroy=True, pgdata=pgdata)
    assert not os.path.exists(os.path.join(pgdata, "PG_VERSION"))
    assert modules.pgfailover.is_created(pgdata=pgdata) is False


def test_apply_settings_reloads_without_restarting_for_a_reloadable_setting(modules, formation):
    node = formation.nodes["node1"]
    pgdata = node["pgdata"]
    query = "SELECT pg_postmaster_start_time() || ' ' || current_setting('wal_sender_timeout')"
    psql = [
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-XAt",
        "-p",
        str(node["port"]),
        "-d",
        "postgres",
        "-c",
        query,
    ]

    def started_and_timeout():
        return subprocess.run(psql, capture_output=True, text=True, check=True, cwd="/").stdout.strip()

    started = started_and_timeout().rsplit(" ", 1)[0]
    auto_conf = os.path.join(pgdata, "postgresql.auto.conf")
    with open(auto_conf) as f:
        original = f.read()
    try:
        with open(auto_conf, "a") as f:
            f.write("wal_sender_timeout = '1500ms'\n")
        # Only the settings the formula's file manages count: pg_autoctl's own (recovery_target_timeline
        # on a node promoted earlier in this module) must not restart the node.
        applied = modules.pgfailover.apply_settings(
            "pgautofailover-node-node1", names=["wal_sender_timeout"], pgdata=pgdata
        )
        assert applied == []
        assert started_and_timeout() == f"{started} 1500ms"  # applied, not restarted
    finally:
        with open(auto_conf, "w") as f:
            f.write(original)
        modules.pgfailover.reload_postgres(pgdata=pgdata)


def test_a_switchover_of_one_formation_leaves_another_formation_alone(modules, formation, local_cluster):
    """
    Two formations on one monitor (pgfailover:formations): a switchover asked
    on the monitor for one of them moves that one's primary, and the other
    formation's primary and states stay as they were (upstream issue 741 was
    a switchover that switched the wrong formation).
    """
    modules.pgfailover.create_formation("sales", dbname="sales", pgdata=formation.monitor)
    sales = {}
    try:
        for name in ("sales1", "sales2"):
            pgdata, options = local_cluster.pgdata(name), {**NODE_OPTIONS, "port": free_port()}
            hostname = options.pop("hostname")
            modules.pgfailover.create_postgres(
                name, hostname, dbname="sales", formation="sales", pgdata=pgdata,
                monitor_uri=formation.monitor_uri, **options,
            )  # fmt: skip
            local_cluster.start(pgdata)
            sales[name] = pgdata
            modules.pgfailover.wait_converged(
                timeout=90, formation="sales", expect_nodes=len(sales), pgdata=formation.monitor
            )
        default_before = modules.pgfailover.state(pgdata=formation.monitor)
        moved = modules.pgfailover.switchover(formation="sales", timeout=120, pgdata=formation.monitor)
        assert (moved["old_primary"], moved["new_primary"]) == ("sales1", "sales2")
        default_after = modules.pgfailover.state(pgdata=formation.monitor)
        states = [(n["nodename"], n["assigned_group_state"]) for n in default_after]
        assert states == [(n["nodename"], n["assigned_group_state"]) for n in default_before]
        assert {n["nodename"] for n in default_after}.isdisjoint(sales)
    finally:
        for name, pgdata in reversed(sales.items()):
            local_cluster.stop(pgdata)
            modules.pgfailover.drop_node(name=name, force=True, formation="sales", pgdata=formation.monitor)
        modules.pgfailover.drop_formation("sales", pgdata=formation.monitor)
