"""
The faults of the chaos campaign, each one thing that happens to a real lab
cluster: ``inject`` does it and holds it, ``heal`` undoes it. They know the
cluster only through the ``Target`` they are given (who is primary, the
secondaries, the monitor) and the random generator of the campaign, so a seed
gives the same sequence of faults and targets.
"""

import dataclasses
import time

from lab.hosts import DATA_ROOT

# How long a fault on a host that is not the primary is held (seconds, drawn).
HOLD = (5.0, 20.0)
# How long a fault on the primary is held once writes are back (the failover is
# over, the old primary is still away).
AFTER_FAILOVER = 3.0


@dataclasses.dataclass
class Target:
    """The cluster as the campaign sees it before a fault."""

    lab: object
    monitor: str
    primary: str
    secondaries: list
    wait_writes: object  # callable(timeout): returns once the formation writer commits again


def _hold(rng):
    time.sleep(round(rng.uniform(*HOLD), 1))


def _host_of(role, target, rng):
    if role == "primary":
        return target.primary
    if role == "monitor":
        return target.monitor
    return rng.choice(sorted(target.secondaries))


def _power(kind):
    """kill / partition / stop of one host, held until writes are back (primary) or a drawn time."""

    def inject(target, rng, role):
        host = _host_of(role, target, rng)
        {"kill": target.lab.kill, "partition": target.lab.partition, "stop": target.lab.stop}[kind](host)
        if role == "primary":
            target.wait_writes(240)
            time.sleep(AFTER_FAILOVER)
        else:
            _hold(rng)
        return {"hosts": [host]}

    def heal(target, details):
        for host in details["hosts"]:
            if kind == "partition":
                target.lab.heal(host)
            else:
                target.lab.start(host)

    return inject, heal


def _two_secondaries(target, rng, role):
    hosts = sorted(target.secondaries)[:2]
    for host in hosts:
        target.lab.partition(host)
    time.sleep(round(rng.uniform(20.0, 30.0), 1))
    return {"hosts": hosts}


def _heal_partitions(target, details):
    for host in details["hosts"]:
        target.lab.heal(host)


def _flap(target, rng, role):
    """The host's link goes down and up 3 to 5 times, each state 0.5 to 3 s."""
    host = _host_of(role, target, rng)
    for _ in range(rng.randint(3, 5)):
        target.lab.partition(host)
        time.sleep(round(rng.uniform(0.5, 3.0), 1))
        target.lab.heal(host)
        time.sleep(round(rng.uniform(0.5, 3.0), 1))
    return {"hosts": [host]}


def _nothing_to_heal(target, details):
    """A planned operation: nothing to undo."""


def _switchover(target, rng, role):
    target.lab.salt(target.monitor, "pgfailover.switchover", "timeout=120", timeout=180)
    return {"hosts": [target.primary]}


def _maintenance(target, rng, role):
    host = _host_of("secondary", target, rng)
    target.lab.salt(host, "pgfailover.enable_maintenance", timeout=180)
    target.lab.salt(target.monitor, "pgfailover.wait_node_state", host, "maintenance", "timeout=120")
    _hold(rng)
    return {"hosts": [host]}


def _end_maintenance(target, details):
    for host in details["hosts"]:
        target.lab.salt(host, "pgfailover.disable_maintenance", timeout=180)


FILLER = f"{DATA_ROOT}/chaos-filler"


def _disk_full(target, rng, role):
    """A secondary's data disk filled up until its PostgreSQL cannot write (ENOSPC), then held."""
    host = _host_of("secondary", target, rng)
    if target.lab.run(host, "mountpoint", "-q", DATA_ROOT, check=False).returncode != 0:
        # Filling the host's root would fill this machine's disk: only a data disk of its own.
        raise RuntimeError(f"{host} has no data disk of its own (lab.hosts.give_data_disk)")
    # dd stops with "No space left on device" once the disk is full: that is the point.
    target.lab.run(host, "dd", "if=/dev/zero", f"of={FILLER}", "bs=1M", check=False, timeout=120)
    free = target.lab.run(host, "df", "--output=avail", DATA_ROOT).stdout.split()[-1]
    _hold(rng)
    # What PostgreSQL said meanwhile: the proof that it could not write.
    log = f"$(ls -t {DATA_ROOT}/{host}/log/*.log | head -n 1)"
    refused = target.lab.run(host, "sh", "-c", f"grep -c 'No space left on device' {log}", check=False)
    return {
        "hosts": [host],
        "free_kib_when_full": int(free),
        "no_space_log_lines": int(refused.stdout.strip() or 0),
    }


def _free_disk(target, details):
    for host in details["hosts"]:
        target.lab.run(host, "rm", "-f", FILLER)


KINDS = {
    "kill-primary": (*_power("kill"), "primary"),
    "kill-secondary": (*_power("kill"), "secondary"),
    "kill-monitor": (*_power("kill"), "monitor"),
    "partition-primary": (*_power("partition"), "primary"),
    "partition-secondary": (*_power("partition"), "secondary"),
    "partition-monitor": (*_power("partition"), "monitor"),
    "stop-primary": (*_power("stop"), "primary"),
    "stop-secondary": (*_power("stop"), "secondary"),
    "stop-monitor": (*_power("stop"), "monitor"),
    "partition-two-secondaries": (_two_secondaries, _heal_partitions, "secondary"),
    "flap-primary": (_flap, _heal_partitions, "primary"),
    "flap-secondary": (_flap, _heal_partitions, "secondary"),
    "switchover": (_switchover, _nothing_to_heal, "primary"),
    "maintenance": (_maintenance, _end_maintenance, "secondary"),
    "disk-full-secondary": (_disk_full, _free_disk, "secondary"),
}
