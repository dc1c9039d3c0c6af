"""
Backups on the lab, for bin/bench backup: on pgbench databases of two
sizes, a full and an incremental backup and a restore through the formula
side by side with the same pgBackRest commands run by hand on the same hosts;
the restore of the whole formation (restore, recovery, re-clone) against the
database size; and the RPO of a quiet primary with the default
archive_timeout (the time from a commit to its WAL file in the repository).
"""

import json
import os
import statistics
import time

import yaml

from bench.failover import orchestrate
from helpers.cluster import PILLAR, SHOW_STATE

HOSTS = ("mon", "pg1", "pg2", "pg3", "bak")
NODES = ("pg1", "pg2", "pg3")
# pgbench scale factors: about 150 MB and 1.5 GB of data.
SCALES = (10, 100)
BACKUP = {"minion": "bak", "retention": {"full": 2, "diff": 2}}
PGBACKREST = ["runuser", "-u", "postgres", "--", "pgbackrest", "--stanza=default"]
PSQL = ["runuser", "-u", "postgres", "--", "psql", "-XAt", "-d", "appdb", "-c"]


def install_pillar(lab, workdir):
    with open(PILLAR) as f:
        data = yaml.safe_load(f)
    data["pgfailover"]["backup"] = BACKUP
    path = os.path.join(workdir, "lab_cluster.sls")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    lab.pillar(path)


def timed(action):
    start = time.monotonic()
    action()
    return round(time.monotonic() - start, 2)


def primary(lab):
    rows = json.loads(lab.run("mon", "sh", "-c", SHOW_STATE).stdout)
    return next(r["nodename"] for r in rows if r["assigned_group_state"] in ("primary", "single"))


def database_bytes(lab, host):
    return int(lab.run(host, *PSQL, "SELECT pg_database_size('appdb')").stdout)


def full_backup_by_formula(lab):
    orchestrate(lab, "pgfailover.orch.backup", {"backup_now": {"type": "full"}})


def by_hand(lab, *args):
    lab.run("bak", *PGBACKREST, *args, timeout=7200)


def restore_by_hand(lab, host):
    """The same restore pgBackRest does for the formula, into a scratch directory, files only."""
    scratch = "/var/lib/postgresql/bench-restore"
    lab.run(host, "sh", "-c", f"rm -rf {scratch} && install -d -o postgres -m 0700 {scratch}")
    seconds = timed(lambda: lab.run(host, *PGBACKREST, f"--pg1-path={scratch}", "restore", timeout=7200))
    lab.run(host, "rm", "-rf", scratch)
    return seconds


def step_seconds(result, step):
    """The duration (s) of one step of an orchestration's return."""
    states = result["data"][next(iter(result["data"]))]
    found = next(state for key, state in states.items() if f"_|-{step}_|-" in key)
    return round(found["duration"] / 1000, 2)


def remove_set_aside(lab):
    for node in NODES:
        lab.run(node, "sh", "-c", "rm -rf /var/lib/postgresql/pgaf/*.before-restore-*")


def measure_size(lab, runs, scale):
    node = primary(lab)
    lab.run(
        node,
        "runuser",
        "-u",
        "postgres",
        "--",
        "pgbench",
        "-q",
        "-i",
        "-s",
        str(scale),
        "appdb",
        timeout=3600,
    )
    # The load's dirty pages written now: otherwise the first backup (start-fast) pays for them.
    lab.run(node, "runuser", "-u", "postgres", "--", "psql", "-XAt", "-c", "CHECKPOINT", timeout=600)
    lab.salt("mon", "pgfailover.wait_converged", "timeout=600", timeout=700)
    size = database_bytes(lab, node)
    row = {"scale": scale, "database_bytes": size}
    samples = {key: [] for key in ("full_formula", "full_hand", "incr_formula", "incr_hand")}
    for run in range(runs):
        # Each run alternates which goes first, so neither always follows the other's work.
        order = ("formula", "hand") if run % 2 == 0 else ("hand", "formula")
        for kind in order:
            if kind == "formula":
                samples["full_formula"].append(timed(lambda: full_backup_by_formula(lab)))
            else:
                samples["full_hand"].append(timed(lambda: by_hand(lab, "--type=full", "backup")))
        for kind in order:
            lab.run(primary(lab), "runuser", "-u", "postgres", "--", "pgbench", "-n", "-t", "2000", "appdb")
            if kind == "formula":
                samples["incr_formula"].append(timed(lambda: orchestrate(lab, "pgfailover.orch.backup")))
            else:
                samples["incr_hand"].append(timed(lambda: by_hand(lab, "--type=incr", "backup")))
    restore_hand, restore_step, restore_formation = [], [], []
    for _ in range(runs):
        restore_hand.append(restore_by_hand(lab, "pg1"))
        started = time.monotonic()
        result = orchestrate(lab, "pgfailover.orch.restore", {"restore": {"latest": True}})
        restore_formation.append(round(time.monotonic() - started, 2))
        restore_step.append(step_seconds(result, "pgfailover-orch-restore-first-node"))
        remove_set_aside(lab)
    for key, values in samples.items():
        row[key] = _median(values)
    row.update(
        restore_hand=_median(restore_hand),
        restore_formula_step=_median(restore_step),
        restore_formation=_median(restore_formation),
        runs=runs,
    )
    for kind in ("full", "incr"):
        row[f"{kind}_overhead"] = round(
            row[f"{kind}_formula"]["median"] / row[f"{kind}_hand"]["median"] - 1, 3
        )
    return row


def _median(values):
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def rpo_quiet(lab, samples=3):
    """
    Seconds from a commit on a quiet primary to the archiving of the WAL file
    holding it (pg_stat_archiver on the primary: archived means in the
    repository), with the default archive_timeout.
    """
    node = primary(lab)
    lab.run(node, *PSQL, "CREATE TABLE IF NOT EXISTS rpo (at timestamptz)")
    times = []
    for _ in range(samples):
        time.sleep(5)
        committed = time.monotonic()
        walfile = lab.run(
            node, *PSQL, "INSERT INTO rpo VALUES (now()); SELECT pg_walfile_name(pg_current_wal_lsn())"
        ).stdout.split()[-1]
        while True:
            archived = lab.run(
                node, *PSQL, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"
            ).stdout
            if archived.strip() and archived.strip()[:24] >= walfile:
                break
            time.sleep(0.5)
        times.append(round(time.monotonic() - committed, 1))
    return {**_median(times), "samples": len(times)}


def bench_backup(lab, runs, workdir):
    lab.down()
    lab.up(*HOSTS)
    install_pillar(lab, workdir)
    orchestrate(lab)
    results = {"archive_timeout": 60, "rpo_quiet_seconds": rpo_quiet(lab), "sizes": {}}
    for scale in SCALES:
        results["sizes"][str(scale)] = measure_size(lab, runs, scale)
        print(f"bench: backup scale {scale}: {json.dumps(results['sizes'][str(scale)])}", flush=True)
    return results
