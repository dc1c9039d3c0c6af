"""
Backups and point-in-time recovery with pgBackRest, end to end on real hosts:
a monitor, three nodes and a dedicated repository host built by the formula
(encrypted repository, backups read from a standby), one cluster shared by
every test here, in order. Refusals first, then the build and its re-run,
backups, a restore to a time after a DROP TABLE, the lost monitor rebuilt
from the restored nodes, archiving through a switchover and a killed primary
and a restore to a restore point on the new timeline, retention, and clean.
"""

import datetime
import time

import pytest

from helpers.bad_pillars import good
from helpers.cluster import DBNAME, Cluster, record
from helpers.local_cluster import BINDIR
from helpers.waiting import wait_until
from lab.session import orchestrate_changes, orchestrate_failures

pytestmark = pytest.mark.lab

HOSTS = ("mon", "pg1", "pg2", "pg3", "bak")  # and mon2, once the monitor is lost
BACKUP = {
    "minion": "bak",
    "retention": {"full": 2, "diff": 2},
    "encryption": True,
    "archive_timeout": 10,
}
PASSPHRASE = "lab-backup-passphrase-Xu8e"
PASSWORDS = {**good()["passwords"], "backup": PASSPHRASE}


def install_pillar(cluster, backup=BACKUP):
    cluster.install_pillar(backup=backup, passwords=PASSWORDS)


@pytest.fixture(scope="module")
def cluster(lab, tmp_path_factory):
    lab.down()
    lab.up(*HOSTS)
    cluster = Cluster(lab, str(tmp_path_factory.mktemp("pillar")))
    cluster.overrides = {"failover": {"profile": "fast"}}  # failovers in seconds, as day 2's
    install_pillar(cluster)
    return cluster


def psql(lab, host, sql, dbname=DBNAME):
    argv = ["runuser", "-u", "postgres", "--", f"{BINDIR}/psql", "-XAt", "-d", dbname, "-c", sql]
    return lab.run(host, *argv).stdout.strip()


def info(lab):
    return lab.salt("bak", "pgfailover_backup.info")["bak"]


def refusal(cluster, name, pillar):
    result = cluster.orchestrate(name, pillar)
    assert result.get("retcode") != 0, result
    return orchestrate_failures(result) or str(result)


def installed(lab, host, package):
    found = lab.run(host, "dpkg-query", "-W", "-f=${Status}", package, check=False).stdout
    return "ok installed" in found


def test_a_node_host_as_repository_is_refused_before_any_host_changes(lab, cluster):
    install_pillar(cluster, backup={**BACKUP, "minion": "pg2"})
    try:
        failures = refusal(cluster, "pgfailover.orch", None)
    finally:
        install_pillar(cluster)
    assert "pillar key pgfailover:backup:minion is 'pg2', which runs a PostgreSQL node" in failures
    assert not any(installed(lab, host, "pgbackrest") for host in HOSTS)


def test_orchestrate_builds_backups_and_a_rerun_changes_nothing(lab, cluster):
    cluster.orchestrate_ok("pgfailover.orch")
    cluster.converged()
    assert orchestrate_changes(cluster.orchestrate_ok("pgfailover.orch")) == []
    for node in cluster.nodes:
        assert psql(lab, node, "SHOW archive_mode", "postgres") == "on"
    summary = info(lab)
    assert summary["status"] == "no valid backups" and summary["cipher"] == "aes-256-cbc", summary
    timers = lab.run("bak", "systemctl", "list-timers", "--all", "--no-pager").stdout
    assert "pgfailover-backup-full.timer" in timers and "pgfailover-backup-diff.timer" in timers


def test_restore_without_any_backup_is_refused(lab, cluster):
    failures = refusal(cluster, "pgfailover.orch.restore", {"restore": {"latest": True}})
    assert "stanza default has no backup to restore from" in failures, failures
    assert cluster.table()  # the nodes are still registered and running
    cluster.converged()


def test_the_nodes_keys_run_pgbackrest_and_nothing_else(lab, cluster):
    ssh = ["runuser", "-u", "postgres", "--", "ssh", "-o", "BatchMode=yes"]
    refused = lab.run("pg1", *ssh, "bak", "id", check=False)
    assert refused.returncode != 0 and "only runs pgBackRest's remote side" in refused.stderr
    sneaky = lab.run("bak", *ssh, "pg1", "pgbackrest info; id", check=False)
    assert sneaky.returncode != 0 and "uid=" not in sneaky.stdout


def test_a_backup_is_read_from_a_standby(lab, cluster):
    primary = cluster.primary()
    result = cluster.orchestrate_ok("pgfailover.orch.backup", {"backup_now": {"type": "full"}})
    assert not orchestrate_failures(result)
    backups = info(lab)["backups"]
    assert [b["type"] for b in backups] == ["full"], backups
    log = lab.run("bak", "cat", "/var/log/pgbackrest/default-backup.log").stdout
    assert "--backup-standby" in log and "replay on the standby reached" in log, log[-2000:]
    assert cluster.primary() == primary
    # From a node's host too, through the repository host.
    assert lab.salt("pg3", "pgfailover.backup_info")["pg3"]["backups"][0]["label"] == backups[0]["label"]


def test_bad_restore_targets_are_refused_before_anything_changes(lab, cluster):
    before = cluster.table()
    tomorrow = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    future = tomorrow.strftime("%Y-%m-%d %H:%M:%S+00")
    cases = {
        "2001-01-01 00:00:00+00": "is before the end of the oldest backup",
        future: "is in the future",
        "2026-13-01 00:00:00+00": "is not a valid time",
        "yesterday": "is not a time with its zone",
    }
    for target, reason in cases.items():
        failures = refusal(cluster, "pgfailover.orch.restore", {"restore": {"target_time": target}})
        assert reason in failures, (target, failures)
    both = refusal(cluster, "pgfailover.orch.restore", {"restore": {"latest": True, "target_name": "x"}})
    assert "exactly one of target_time, target_name, latest" in both
    lab.run("bak", "chmod", "000", "/var/lib/pgbackrest")
    try:
        unreadable = refusal(cluster, "pgfailover.orch.restore", {"restore": {"latest": True}})
    finally:
        lab.run("bak", "chmod", "0750", "/var/lib/pgbackrest")
    assert "the repository cannot be read: pgBackRest reports stanza default as 'other'" in unreadable, (
        unreadable
    )
    weekly = refusal(cluster, "pgfailover.orch.backup", {"backup_now": {"type": "weekly"}})
    assert "pillar backup_now:type is weekly; allowed: full, diff, incr" in weekly, weekly
    assert sorted(cluster.table()) == sorted(before)
    assert len(info(lab)["backups"]) == 1


def current_primary(cluster):
    """The writable primary's name, or None while there is none (a failover under way)."""
    found = cluster.call("pgfailover.primary")
    return found["nodename"] if found else None


def server_time(lab, host):
    return psql(lab, host, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")


def present_ids(lab, host, table):
    answer = psql(lab, host, f"SELECT coalesce(string_agg(id::text, ','), '') FROM {table}")
    return {int(i) for i in answer.split(",") if i}


def test_a_dropped_table_comes_back_by_a_restore_to_a_time_before_the_drop(lab, cluster):
    before_t = cluster.writer("pitr")
    with before_t:
        before_t.wait_for_commits(100)
    cluster.orchestrate_ok("pgfailover.orch.backup")  # an incremental backup among the rows
    primary = cluster.primary()
    target = server_time(lab, primary) + "+00"
    time.sleep(1)
    after_t = cluster.writer("pitr")
    after_t.first_id = 1_000_000
    with after_t:
        after_t.wait_for_commits(100)
    psql(lab, primary, "DROP TABLE writes_pitr")

    started = time.monotonic()
    cluster.orchestrate_ok("pgfailover.orch.restore", {"restore": {"target_time": target}})
    restore_seconds = time.monotonic() - started
    table = cluster.converged()
    primary = cluster.primary()
    assert sum(1 for r in table.values() if r["assigned_group_state"] == "secondary") == 2, table
    present = present_ids(lab, primary, "writes_pitr")
    lost = sorted(set(before_t.acknowledged) - present)
    leaked = sorted(present & set(after_t.acknowledged))
    assert not lost and not leaked, (f"lost {lost[:10]}", f"after the target {leaked[:10]}")
    assert present, "no row at all"
    # The old data directories were moved aside, never deleted.
    for node in cluster.nodes:
        kept = lab.run(node, "sh", "-c", f"ls -d /var/lib/postgresql/pgaf/{node}.before-restore-*").stdout
        assert kept.strip(), node
    # Writes work again, and the new primary archives (the stanza's check).
    writer = cluster.writer("after_restore")
    since = time.monotonic()
    with writer:
        writer.wait_for_commits(20)
    record("after restore", writer, since, cluster)
    assert lab.salt(primary, "pgfailover_backup.check")[primary] is True
    print(f"restore to a time of a 3-node formation: {restore_seconds:.1f} s")


def test_a_lost_monitor_is_rebuilt_from_the_restored_nodes(lab, cluster):
    """The monitor's database is not backed up: replace_monitor rebuilds it from the restored nodes."""
    primary = cluster.primary()
    rows = present_ids(lab, primary, "writes_pitr")
    lab.kill("mon")
    lab.up("mon2")
    cluster.monitor = "mon2"
    install_pillar(cluster)
    cluster.orchestrate_ok("pgfailover.orch.replace_monitor")
    cluster.converged()
    primary = cluster.primary()
    assert present_ids(lab, primary, "writes_pitr") == rows
    assert lab.salt(primary, "pgfailover_backup.check")[primary] is True
    assert orchestrate_changes(cluster.orchestrate_ok("pgfailover.orch")) == []


@pytest.mark.slow
def test_archiving_follows_a_switchover_and_a_killed_primary_and_a_restore_point_after_them_comes_back(
    lab, cluster, killed
):
    """
    Archiving passes pgBackRest's check after a switchover and after the new
    primary's host is killed; then a restore point on the newest timeline
    (refused on a secondary) and a restore to it: every row acknowledged
    before it is back, none written after it. One restore proves both the
    timeline switches and a named target (the time target is the DROP TABLE
    test's).
    """
    writer = cluster.writer("archive_failover")
    since = time.monotonic()
    with writer:
        old = cluster.primary()
        cluster.orchestrate_ok("pgfailover.orch.switchover")
        cluster.converged()
        switched = cluster.primary()
        assert switched != old
        assert lab.salt(switched, "pgfailover_backup.check")[switched] is True
        writer.wait_for_commits(20)
        killed(switched)
        wait_until(lambda: current_primary(cluster) not in (switched, None), 180, "another node promoted", 1)
        promoted = current_primary(cluster)
        writer.wait_for_commits(50)
        assert lab.salt(promoted, "pgfailover_backup.check")[promoted] is True
    record("archive across failover", writer, since, cluster)
    lab.start(switched)
    cluster.converged(timeout=300)

    primary = cluster.primary()
    point = lab.salt(primary, "pgfailover.restore_point", "after-failover")[primary]
    assert point["name"] == "after-failover" and point["lsn"].count("/") == 1, point
    secondary = next(name for name in cluster.secondaries() if name != primary)
    refused = lab.salt(secondary, "pgfailover.restore_point", "elsewhere", check=False)[secondary]
    assert "is a secondary: create the restore point on the primary" in str(refused), refused
    after = cluster.writer("archive_failover")
    after.first_id = 1_000_000
    with after:
        after.wait_for_commits(50)

    cluster.orchestrate_ok("pgfailover.orch.restore", {"restore": {"target_name": "after-failover"}})
    cluster.converged()
    present = present_ids(lab, cluster.primary(), "writes_archive_failover")
    lost = sorted(set(writer.acknowledged) - present)
    assert not lost, f"rows of the new timeline lost: {lost[:10]}"
    assert not present & set(after.acknowledged), "rows written after the restore point came back"


def test_the_oldest_full_backup_expires_after_one_more_than_the_retention(lab, cluster):
    fulls = [b["label"] for b in info(lab)["backups"] if b["type"] == "full"]
    while len(fulls) < 3:
        taken = lab.salt("bak", "pgfailover_backup.backup", "type=full", timeout=900)["bak"]
        fulls.append(taken["label"])
    kept = [b["label"] for b in info(lab)["backups"] if b["type"] == "full"]
    assert kept == fulls[-2:], (fulls, kept)


def test_clean_removes_timers_and_configuration_and_keeps_the_repository(lab, cluster):
    lab.salt("bak", "state.apply", "pgfailover.backup.clean")
    assert lab.run("bak", "test", "-e", "/etc/pgbackrest/pgbackrest.conf", check=False).returncode != 0
    timers = lab.run("bak", "systemctl", "list-timers", "--all", "--no-pager").stdout
    assert "pgfailover-backup" not in timers
    repository = lab.run("bak", "ls", "/var/lib/pgbackrest/backup/default").stdout
    assert "backup.info" in repository
    keys = lab.run("bak", "cat", "/var/lib/postgresql/.ssh/authorized_keys").stdout
    assert "pgfailover" not in keys
