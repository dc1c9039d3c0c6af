"""
Two formations on one monitor, built by one orchestrate from bare hosts:
`default` (pg1, pg2, pg3 on port 5432, database appdb) and `billing` (pgb1,
pgb2, pgb3 on the same three hosts, port 5433, database billing with its own
owner), behind one HAProxy with ports per formation. An action on one
formation never touches the other: a switchover and a killed primary in
billing while a writer runs in each formation; the other formation's primary
never changes, its writer sees no outage, and neither loses an acknowledged
row. Last, a second cluster (its own monitor) from the same master, built
while the first is orchestrated at the same time, and cleaned alone.

The tests share one cluster and run in file order.
"""

import json
import os
import threading
import time

import psycopg
import pytest
import yaml

from helpers.cluster import APP_PASSWORD, Cluster, record
from helpers.proxy import proxy_uri
from helpers.waiting import wait_until
from helpers.writer import Writer, client_uri
from lab.session import orchestrate_changes, orchestrate_failures

HOSTS = ("mon", "pg1", "pg2", "pg3")
BILLING_PASSWORD = "lab-billing-Ke4t"
BILLING = {
    "dbname": "billing",
    "nodes": [{"name": f"pgb{i}", "minion": f"pg{i}", "port": 5433, "health_port": 8009} for i in (1, 2, 3)],
    "number_sync_standbys": 1,
    "app": {"owner": "billing", "cidrs": ["10.147.0.0/24"]},
    "passwords": {"app": BILLING_PASSWORD},
    "haproxy": {"read_write_port": 5100, "read_only_port": 5101},
}
# HAProxy on the monitor's host, in front of every formation.
PROXY_HOST = "mon"
DEFAULT_READ_WRITE_PORT = 5000  # the top-level formation's (haproxy:read_write_port)
SALES = {
    **BILLING,
    "dbname": "sales",
    "nodes": [{"name": f"pgs{i}", "minion": f"pg{i}", "port": 5434, "health_port": 8010} for i in (1, 2, 3)],
    "app": {"owner": "sales", "cidrs": ["10.147.0.0/24"]},
    "haproxy": {"read_write_port": 5200, "read_only_port": 5201},
}
# A second cluster, its own monitor, from the same master (the last test).
SECOND_HOSTS = ("mon2", "pg4", "pg5")
# No outage for the formation left alone: its writer commits every 20 ms; a
# gap of a second would mean it waited on the other formation's failover.
UNTOUCHED_GAP = 1.0


@pytest.fixture(scope="module")
def cluster(lab, tmp_path_factory):
    lab.down()
    lab.up(*HOSTS)
    cluster = Cluster(lab, str(tmp_path_factory.mktemp("pillar")))
    cluster.overrides = {
        "failover": {"profile": "fast"},
        "formations": {"billing": BILLING},
        "haproxy": {"minions": [PROXY_HOST]},
    }
    cluster.install_pillar()
    return cluster


def billing(cluster, timeout=240):
    """Billing's state table once converged, by node name."""
    rows = cluster.call(
        "pgfailover.wait_converged",
        "formation=billing",
        f"timeout={timeout}",
        "expect_nodes=3",
        timeout=timeout + 30,
    )
    return {row["nodename"]: row for row in rows}


def billing_primary(cluster):
    """Billing's writable primary, or None while it has none."""
    return (cluster.call("pgfailover.primary", "formation=billing") or {}).get("nodename")


def billing_writer(cluster, scenario):
    uri = client_uri(
        cluster.call("pgfailover.uri", "formation=billing")["formation"], cluster.lab.address, "billing"
    )
    return Writer(uri, BILLING_PASSWORD, table=f"writes_{scenario}")


def host_of(name):
    return next(node["minion"] for node in BILLING["nodes"] if node["name"] == name)


def test_one_orchestrate_builds_both_formations_and_a_rerun_changes_nothing(lab, cluster):
    cluster.orchestrate_ok("pgfailover.orch")
    assert cluster.converged()["pg1"]["current_group_state"] == "primary"
    table = billing(cluster)
    assert table["pgb1"]["current_group_state"] == "primary"
    assert {table[name]["current_group_state"] for name in ("pgb2", "pgb3")} == {"secondary"}
    assert cluster.call("pgfailover.number_sync_standbys", "formation=billing") == 1
    local = lab.salt("pg1", "pgfailover.state", "local=True", "pgdata=/var/lib/postgresql/pgaf/pgb1")["pg1"]
    assert (local["nodename"], local["formation"]) == ("pgb1", "billing")  # what the beacon's events carry
    assert orchestrate_changes(cluster.orchestrate_ok("pgfailover.orch")) == []


def test_a_switchover_of_billing_leaves_default_alone_under_writes(cluster):
    default_primary, old = cluster.primary(), billing_primary(cluster)
    with cluster.writer("formations_switchover") as untouched, billing_writer(cluster, "switchover") as moved:
        since = time.monotonic()
        cluster.call("pgfailover.switchover", "formation=billing", "timeout=120", timeout=180)
        moved.wait_for_commits(20, timeout=120)
        untouched.wait_for_commits(20)
    assert billing_primary(cluster) != old
    assert cluster.primary() == default_primary
    assert untouched.downtime(since) < UNTOUCHED_GAP, untouched.downtime(since)
    record("billing switchover (billing writer)", moved, since, cluster)
    record("billing switchover (default writer)", untouched, since, cluster)


def behind(lab, port, user, dbname, password):
    """The (host, PostgreSQL port, standby?) a connection to HAProxy's port lands on."""
    uri = proxy_uri(lab.address(PROXY_HOST), port, user, dbname)
    with psycopg.connect(uri, password=password, autocommit=True, connect_timeout=5) as conn:
        address, pgport, standby = conn.execute(
            "SELECT inet_server_addr(), inet_server_port(), pg_is_in_recovery()"
        ).fetchone()
    return next(host for host in HOSTS if lab.address(host) == str(address)), pgport, standby


def test_haproxy_gives_each_formation_its_ports_and_follows_a_billing_switchover_alone(lab, cluster):
    default_primary, old = cluster.primary(), billing_primary(cluster)
    ports = BILLING["haproxy"]

    def billing_writes():
        return behind(lab, ports["read_write_port"], "billing", "billing", BILLING_PASSWORD)

    def default_writes():
        return behind(lab, DEFAULT_READ_WRITE_PORT, "app", "appdb", APP_PASSWORD)

    wait_until(lambda: billing_writes() == (host_of(old), 5433, False), 30, f"billing's port on {old}")
    assert default_writes() == (default_primary, 5432, False)
    reads = behind(lab, ports["read_only_port"], "billing", "billing", BILLING_PASSWORD)
    assert reads[1:] == (5433, True) and reads[0] != host_of(old)
    cluster.call("pgfailover.switchover", "formation=billing", "timeout=120", timeout=180)
    new = billing_primary(cluster)
    assert new != old
    wait_until(lambda: billing_writes() == (host_of(new), 5433, False), 30, f"billing's port on {new}")
    assert default_writes() == (default_primary, 5432, False)
    assert cluster.primary() == default_primary


@pytest.mark.slow
def test_a_killed_primary_of_billing_fails_over_billing_only_and_rejoins(lab, cluster):
    default_primary, victim = cluster.primary(), billing_primary(cluster)
    unit = f"pgautofailover-node-{victim}"
    with cluster.writer("formations_killed") as untouched, billing_writer(cluster, "killed") as moved:
        since = time.monotonic()
        # The node's keeper and PostgreSQL die at once and stay down (systemd would restart them within
        # 2 s, often before the monitor finds the node unhealthy); the default node on the host lives on.
        lab.run(host_of(victim), "sh", "-c", f"systemctl kill --signal=KILL {unit}; systemctl stop {unit}")
        wait_until(
            lambda: billing_primary(cluster) not in (None, victim), 120, "billing promotes another node", 1
        )
        lab.run(host_of(victim), "systemctl", "start", unit)
        moved.wait_for_commits(20, timeout=120)
        untouched.wait_for_commits(20)
    assert cluster.primary() == default_primary
    assert untouched.downtime(since) < UNTOUCHED_GAP, untouched.downtime(since)
    record("billing primary killed (billing writer)", moved, since, cluster)
    record("billing primary killed (default writer)", untouched, since, cluster)
    table = billing(cluster)  # the old primary rejoins
    assert table[victim]["current_group_state"] == "secondary"


def test_a_formation_added_to_the_running_monitor_is_built_by_orchestrate_alone(lab, cluster):
    before = {"default": cluster.primary(), "billing": billing_primary(cluster)}
    cluster.install_pillar(formations={"billing": BILLING, "sales": SALES})
    changed = orchestrate_changes(cluster.orchestrate_ok("pgfailover.orch"))
    others = [
        (minion, state_id)
        for minion, state_id in changed
        if not ("pgs" in state_id or "sales" in state_id or "pgfailover-haproxy-init-" in state_id)
    ]
    assert changed and not others, others  # sales' own states, and HAProxy gaining sales' ports
    rows = cluster.call(
        "pgfailover.wait_converged", "formation=sales", "timeout=240", "expect_nodes=3", timeout=270
    )
    assert {row["nodename"]: row["current_group_state"] for row in rows}["pgs1"] == "primary"
    assert {"default": cluster.primary(), "billing": billing_primary(cluster)} == before


def test_dropping_billing_leaves_default_serving_and_keeps_billings_data(lab, cluster):
    default_primary = cluster.primary()
    with cluster.writer("formations_drop") as untouched:
        since = time.monotonic()
        cluster.orchestrate_ok("pgfailover.orch.drop_formation", {"drop_formation": "billing"})
        untouched.wait_for_commits(20)
    assert cluster.call("pgfailover.formation", "billing") is None
    assert cluster.primary() == default_primary
    assert untouched.downtime(since) < UNTOUCHED_GAP, untouched.downtime(since)
    record("billing dropped (default writer)", untouched, since, cluster)
    for node in BILLING["nodes"]:
        unit = lab.run(
            node["minion"], "systemctl", "is-active", f"pgautofailover-node-{node['name']}", check=False
        )
        assert unit.stdout.strip() != "active", node
        kept = lab.run(
            node["minion"], "test", "-f", f"/var/lib/postgresql/pgaf/{node['name']}/PG_VERSION", check=False
        )
        assert kept.returncode == 0, f"{node['name']}'s data directory is gone"
    assert sorted(cluster.converged()) == ["pg1", "pg2", "pg3"]
    assert cluster.call("pgfailover.formation", "sales")["dbname"] == "sales"  # the other one stays


def sales_primary(cluster):
    return (cluster.call("pgfailover.primary", "formation=sales") or {}).get("nodename")


def write_pillar(directory, name, data):
    path = os.path.join(directory, f"{name}.sls")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def test_a_second_cluster_from_the_same_master_builds_beside_the_first_and_cleans_alone(
    lab, cluster, tmp_path
):
    """
    Each cluster's hosts get only their own pgfailover pillar; the master holds
    both under pgfailover_clusters, and each orchestration names its cluster.
    The second is built from bare hosts while the first is orchestrated at the
    same time, then cleaned while a writer runs on the first.
    """
    lab.up(*SECOND_HOSTS)
    first = cluster.pillar_data(formations={"sales": SALES})  # billing was dropped
    second = cluster.pillar_data(nodes=["pg4", "pg5"], monitor="mon2")
    del second["pgfailover"]["formations"]  # one formation: default
    del second["pgfailover"]["haproxy"]  # the first cluster's HAProxy host is not the second's
    second["pgfailover"]["number_sync_standbys"] = 0  # two nodes: one standby, nothing to spare
    files = [
        write_pillar(tmp_path, "first", first),
        write_pillar(tmp_path, "second", second),
        write_pillar(tmp_path, "clusters", {"pgfailover_clusters": {"first": first["pgfailover"],
                                                                   "second": second["pgfailover"]}}),
        write_pillar(tmp_path, "top", {"base": {
            "L@mon,pg1,pg2,pg3": [{"match": "compound"}, "first"],
            "L@mon2,pg4,pg5": [{"match": "compound"}, "second"],
            "*_master": ["first", "clusters"],
        }}),
    ]  # fmt: skip
    lab.pillar(*files)
    before = {"default": cluster.primary(), "sales": sales_primary(cluster)}
    runs = {}

    def orchestrate(name):
        runs[name] = cluster.orchestrate("pgfailover.orch", {"pgfailover_cluster": name})

    with cluster.writer("clusters_build") as untouched:
        since = time.monotonic()
        both = [threading.Thread(target=orchestrate, args=(name,)) for name in ("second", "first")]
        for thread in both:
            thread.start()
        for thread in both:
            thread.join()
        untouched.wait_for_commits(20)
    for name, result in runs.items():
        assert result and result.get("retcode", 1) == 0, f"{name}: {orchestrate_failures(result)}"
    built = orchestrate_changes(runs["second"])
    assert built and {minion for minion, _ in built} <= set(SECOND_HOSTS), built
    assert {minion for minion, _ in orchestrate_changes(runs["first"])} <= {"mon", "pg1", "pg2", "pg3"}
    rows = lab.salt("mon2", "pgfailover.wait_converged", "timeout=240", "expect_nodes=2", timeout=270)["mon2"]
    assert {row["nodename"]: row["current_group_state"] for row in rows} == {
        "pg4": "primary", "pg5": "secondary"
    }  # fmt: skip
    assert untouched.downtime(since) < UNTOUCHED_GAP, untouched.downtime(since)
    record("second cluster built (first writer)", untouched, since, cluster)

    with cluster.writer("clusters_clean") as untouched:
        since = time.monotonic()
        cleaned = cluster.orchestrate_ok("pgfailover.orch.clean", {"pgfailover_cluster": "second"})
        untouched.wait_for_commits(20)
    assert {minion for minion, _ in orchestrate_changes(cleaned)} <= set(SECOND_HOSTS)
    assert untouched.downtime(since) < UNTOUCHED_GAP, untouched.downtime(since)
    record("second cluster cleaned (first writer)", untouched, since, cluster)
    for host in SECOND_HOSTS:
        unit = "pgautofailover-monitor" if host == "mon2" else f"pgautofailover-node-{host}"
        assert lab.run(host, "systemctl", "is-active", unit, check=False).stdout.strip() != "active", host
    assert {"default": cluster.primary(), "sales": sales_primary(cluster)} == before
    assert sorted(cluster.converged()) == ["pg1", "pg2", "pg3"]
    print("two clusters:", json.dumps({name: len(orchestrate_changes(r)) for name, r in runs.items()}))
