"""
Write downtime on the lab, for bin/bench: a real client writes through the
formation URI while a scenario runs (switchover, rolling maintenance, the
primary's host killed under each failover profile, the primary partitioned),
and the downtime and lost acknowledged rows of every run are recorded; one
failover is also recorded as a timeline of every node's state.
"""

import json
import os
import subprocess
import time

import yaml

from helpers.cluster import APP_PASSWORD, PILLAR, SHOW_STATE, WRITABLE
from helpers.sampler import Sampler
from helpers.writer import Writer, client_uri
from lab.session import orchestrate_failures

HOSTS = ("mon", "pg1", "pg2", "pg3")


def install_pillar(lab, workdir, nodes, profile=None, sync_standbys=1):
    """The lab pillar with these nodes and, when given, a failover profile."""
    with open(PILLAR) as f:
        data = yaml.safe_load(f)
    data["pgfailover"]["nodes"] = [{"name": name} for name in nodes]
    data["pgfailover"]["number_sync_standbys"] = sync_standbys
    if profile:
        data["pgfailover"]["failover"] = {"profile": profile}
    path = os.path.join(workdir, "lab_cluster.sls")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    lab.pillar(path)


def orchestrate(lab, name="pgfailover.orch", pillar=None):
    args = ["state.orchestrate", name] + ([f"pillar={json.dumps(pillar)}"] if pillar else [])
    result = lab.salt_run(*args, check=False)
    if not result or result.get("retcode", 1) != 0:
        raise RuntimeError(f"{name} failed:\n{orchestrate_failures(result) or json.dumps(result)[:2000]}")
    return result


# pg_autoctl 2.0 waits a hard-coded 10 s for its postgres controller to start
# PostgreSQL and logs this when the wait runs out; each line is one 10 s stall.
STALL = "Failed to ensure that Postgres is running"


def keeper_stalls(lab, hosts, since=None, until=None, units="pgautofailover*"):
    """How many times the keepers on these hosts gave up waiting 10 s for PostgreSQL (between epochs)."""
    window = (f"--since=@{int(since)} " if since else "") + (f"--until=@{int(until) + 1} " if until else "")
    command = f"journalctl --no-pager -o cat {window}-u '{units}' | grep -c '{STALL}'"
    counts = [lab.run(host, "sh", "-c", command, check=False).stdout.strip() for host in hosts]
    return sum(int(count) for count in counts if count.isdigit())


def table(lab):
    return json.loads(lab.run("mon", "sh", "-c", SHOW_STATE).stdout)


def primary(lab):
    return next(n["nodename"] for n in table(lab) if n["assigned_group_state"] in WRITABLE)


def converged(lab, nodes=3, timeout=300):
    args = (f"timeout={timeout}", f"expect_nodes={nodes}")
    lab.salt("mon", "pgfailover.wait_converged", *args, timeout=timeout + 30)


def writer(lab, scenario):
    uri = lab.salt("mon", "pgfailover.uri")["mon"]["formation"]
    table_name = f"bench_{scenario}_{time.time_ns()}"
    return Writer(client_uri(uri, lab.address, "app"), APP_PASSWORD, table=table_name)


class Timeline(Sampler):
    """Every node's current and assigned state, read from the monitor every 0.25 s."""

    def __init__(self, lab):
        super().__init__()
        self.lab = lab
        self.samples = []  # (monotonic, {node: [current, assigned, health]})

    def sample(self):
        try:
            rows = json.loads(self.lab.run("mon", "sh", "-c", SHOW_STATE, timeout=10).stdout)
        except (OSError, ValueError, RuntimeError, subprocess.SubprocessError):
            return  # a sample lost while the monitor is busy is only a gap in the chart
        states = {
            r["nodename"]: [r["current_group_state"], r["assigned_group_state"], r["health"]] for r in rows
        }
        self.samples.append((time.monotonic(), states))

    def relative_to(self, origin):
        return [{"t": round(at - origin, 3), "nodes": nodes} for at, nodes in self.samples]


def _measure(lab, scenario, act, recover, timeline=None):
    """Run ``act`` under writes; return downtime, lost rows (and the timeline when asked)."""
    converged(lab)
    wall_since = time.time()
    with writer(lab, scenario) as client:
        since = time.monotonic()
        if timeline is not None:
            with Timeline(lab) as states:
                act()
                client.wait_for_commits(20, timeout=240)
                time.sleep(2)
            timeline.update(
                scenario=scenario, samples=states.relative_to(since), downtime=client.downtime(since)
            )
        else:
            act()
            client.wait_for_commits(20, timeout=240)
        downtime = client.downtime(since)
        writes_back = time.time()  # stalls of the rejoin below do not count: writes are back
        recover()
        converged(lab)
        client.wait_for_commits(10)
    stalls = keeper_stalls(lab, [row["nodename"] for row in table(lab)], wall_since, writes_back)
    return {"downtime": downtime, "lost": len(client.missing()), "stalls": stalls}


def kill_primary(lab, timeline=None):
    victim = primary(lab)
    return _measure(lab, "kill", lambda: lab.kill(victim), lambda: lab.start(victim), timeline)


def partition_primary(lab):
    victim = primary(lab)
    return _measure(lab, "partition", lambda: lab.partition(victim), lambda: lab.heal(victim))


def switchover(lab):
    return _measure(lab, "switchover", lambda: orchestrate(lab, "pgfailover.orch.switchover"), lambda: None)


def rolling(lab):
    return _measure(lab, "rolling", lambda: orchestrate(lab, "pgfailover.orch.rolling"), lambda: None)
