"""
The formations benchmark (bin/bench formations): one orchestrate of three
formations of three nodes on one monitor (ten hosts) against one formation of
three nodes on the same lab, in the same run; the idempotent re-run at ten
hosts and the memory of the ten-host lab.
"""

import os
import statistics
import time

import yaml

from bench.failover import orchestrate
from lab import hosts
from lab.paths import REPO
from lab.session import orchestrate_changes

PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")
SINGLE = ["pg1", "pg2", "pg3"]
EXTRA = {"sales": ["pg4", "pg5", "pg6"], "crm": ["pg7", "pg8", "pg9"]}


def install_pillar(lab, workdir, formations):
    """The lab pillar, its top-level formation on pg1-3, plus ``formations`` (name: its hosts)."""
    with open(PILLAR) as f:
        data = yaml.safe_load(f)
    cluster = data["pgfailover"]
    cluster["nodes"] = [{"name": name} for name in SINGLE]
    cluster["formations"] = {
        name: {
            "dbname": name,
            "nodes": [{"name": host} for host in nodes],
            "number_sync_standbys": 1,
            "app": {"owner": name, "cidrs": cluster["app"]["cidrs"]},
            "passwords": {"app": f"lab-{name}-owner-Pw7q"},
        }
        for name, nodes in formations.items()
    }
    if not formations:
        del cluster["formations"]
    path = os.path.join(workdir, "lab_cluster.sls")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    lab.pillar(path)


def lab_pss_mib(lab, pss_kib):
    """Proportional memory of every lab host's processes, in MiB."""
    return sum(pss_kib(hosts.processes(name)) for name in lab.running()) / 1024


def bench_formations(lab, runs, workdir, timed, summary, pss_kib):
    single, triple, rerun, memory, changes = [], [], [], [], []
    all_hosts = ["mon", *SINGLE, *[host for nodes in EXTRA.values() for host in nodes]]
    for _ in range(runs):
        lab.down()
        lab.up("mon", *SINGLE)
        install_pillar(lab, workdir, {})
        single.append(timed(lambda: orchestrate(lab)))
        lab.down()
        lab.up(*all_hosts)
        install_pillar(lab, workdir, EXTRA)
        triple.append(timed(lambda: orchestrate(lab)))
        started = time.monotonic()
        changes.append(len(orchestrate_changes(orchestrate(lab))))
        rerun.append(time.monotonic() - started)
        time.sleep(15)  # idle
        memory.append(lab_pss_mib(lab, pss_kib))
    return {
        "bring_up_1_formation_3_nodes": summary(single),
        "bring_up_3_formations_3_nodes": summary(triple),
        "three_over_one": round(statistics.median(triple) / statistics.median(single), 2),
        "idempotent_orchestrate_10_hosts": summary(rerun),
        "idempotent_changes": max(changes),
        "lab_pss_10_hosts": summary(memory, "MiB"),
    }
