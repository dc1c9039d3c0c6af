"""
Who accepts writes, asked of every node from inside its host several times a
second: the check behind "never two writable nodes" in the failure tests and
the chaos campaign.
"""

import subprocess
import time

from helpers.cluster import NODE_STATES, WRITABLE
from helpers.sampler import Sampler
from lab.hosts import LabError


class RoleSampler(Sampler):
    """
    Asks every node, from inside its host, whether it accepts writes: its
    PostgreSQL is out of recovery AND its keeper's own state is a writable one
    (single, wait_primary, primary, apply_settings). A standby promoted in
    stop_replication is out of recovery but not yet writable: pg_auto_failover
    holds it there until the old primary has demoted or the demote timeout
    has passed.
    """

    interval = 0.2
    # The keeper's current state, read from its state file (int32 at offset 56), never
    # with `pg_autoctl show state --local`: that deletes the running service's order
    # file to its PostgreSQL controller, and the failover it samples stalls 10 s.
    PROBE = (
        "runuser -u postgres -- psql -p 5432 -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null || echo down; "
        "od -An -t d4 -j 56 -N 4 "
        "/var/lib/postgresql/.local/share/pg_autoctl/var/lib/postgresql/pgaf/{node}/pg_autoctl.state"
    )

    def __init__(self, lab, nodes):
        super().__init__()
        self.lab = lab
        self.nodes = nodes
        self.sweeps = []  # (time, {node: 'writable' | 'standby' | 'down'})
        self.states = []  # (time, {node: (in_recovery, keeper state)})

    def _probe(self, node):
        try:
            probe = self.lab.run(node, "sh", "-c", self.PROBE.format(node=node), check=False, timeout=10)
        except (LabError, subprocess.TimeoutExpired):  # the host is down (killed, stopped) or hangs
            return "down", ("down", "?")
        recovery, number = [*probe.stdout.split(), "?", "?"][:2]
        state = NODE_STATES[int(number)] if number.isdigit() and int(number) < len(NODE_STATES) else "?"
        if recovery == "down":
            return "down", (recovery, state)
        writable = recovery == "f" and state in WRITABLE
        return ("writable" if writable else "standby"), (recovery, state)

    def sample(self):
        probes = {node: self._probe(node) for node in self.nodes}
        now = time.monotonic()
        self.sweeps.append((now, {node: role for node, (role, _) in probes.items()}))
        self.states.append((now, {node: detail for node, (_, detail) in probes.items()}))

    def first(self, node, role, since=0.0):
        return next((at for at, roles in self.sweeps if at >= since and roles[node] == role), None)

    def changes(self, since):
        """One line per sweep in which a node's (in recovery, keeper state) changed: for failure messages."""
        lines, last = [], None
        for at, states in list(self.states):
            if states != last:
                shown = " ".join(f"{node}={'/'.join(state)}" for node, state in states.items())
                lines.append(f"{at - since:+7.2f} s {shown}")
                last = states
        return lines

    def overlaps(self, since=0.0):
        """(seconds after ``since``, states) of every sweep in which more than one node was writable."""
        return [
            (round(at - since, 1), states)
            for (at, sweep), (_, states) in zip(list(self.sweeps), list(self.states), strict=False)
            if at >= since and list(sweep.values()).count("writable") > 1
        ]
