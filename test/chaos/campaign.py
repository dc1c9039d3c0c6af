"""
A seeded campaign of faults on a real lab cluster (make chaos, bin/chaos).

Throughout: a writer through the formation URI, another through HAProxy's
read-write port, and the role sampler (which node accepts writes, asked of
every node several times a second). For each fault drawn: the cluster is
converged first, the fault is injected and held, then healed; the campaign
records the write outage of each writer, how long the formation took to
converge after the heal, the rows acknowledged, the acknowledged rows that
are not on the primary afterwards, and any sweep in which two nodes accepted
writes. A failover wedged in fast_forward (pg_auto_failover, docs/known-issues.md)
is ended the way the known issues say, by rebuilding the wedged node, and
recorded. Same seed, same sequence of faults and targets.
"""

import json
import os
import random
import subprocess
import time
import traceback

from bench.failover import keeper_stalls
from chaos import faults
from chaos.phases import failover_phases
from helpers.cluster import APP_PASSWORD, WRITABLE, is_converged
from helpers.proxy import proxy_uri
from helpers.roles import RoleSampler
from helpers.writer import Writer
from lab.session import SaltError

READ_WRITE = 5000  # HAProxy's read-write port (the formula's default)
CONVERGE_BOUND = 300  # seconds: a fault whose heal does not converge within this is a failure
RECOVERY_BOUND = 600  # seconds: after a failure, the campaign heals everything and waits this long
# seconds without a primary while the monitor sends a node to fast_forward: the failover is wedged
# (docs/known-issues.md) and that node is rebuilt, the workaround the known issues give
WEDGE_AFTER = 90
POLL = 2.0


def draw(seed, count, kinds=None):
    """The sequence of fault kinds of a campaign: the same for the same seed, count and kinds."""
    rng = random.Random(seed)
    names = sorted(kinds or faults.KINDS)
    return [rng.choice(names) for _ in range(count)], rng


class Campaign:
    """Runs the faults on the cluster (helpers.cluster.Cluster) with HAProxy on ``proxy_host``."""

    def __init__(self, cluster, proxy_host, log=print, stall_journals=None):
        self.cluster = cluster
        self.stall_journals = stall_journals  # a directory: the keepers' journals before each 10 s stall
        self.lab = cluster.lab
        self.proxy_host = proxy_host
        self.log = log
        stamp = time.time_ns()
        self.uri_writer = cluster.writer(f"chaos_uri_{stamp}")
        self.proxy_writer = Writer(
            proxy_uri(self.lab.address(proxy_host), READ_WRITE), APP_PASSWORD, table=f"chaos_proxy_{stamp}"
        )
        self.roles = RoleSampler(self.lab, cluster.nodes)
        self.roles.interval = 0.25

    def run(self, seed, count, kinds=None, max_minutes=None):
        """Every fault of the seed's sequence, while time allows; the campaign's record (a dict)."""
        sequence, rng = draw(seed, count, kinds)
        started = time.monotonic()
        records = []
        self.cluster.converged(timeout=CONVERGE_BOUND)
        with self.uri_writer, self.proxy_writer, self.roles:
            for number, kind in enumerate(sequence, 1):
                if max_minutes and time.monotonic() - started > max_minutes * 60:
                    self.log(f"chaos: {max_minutes} min reached after {number - 1} faults")
                    break
                record = self.one(number, kind, rng)
                records.append(record)
                self.log(f"chaos: {number}/{len(sequence)} {summary(record)}")
                if self.roles.failure:  # the two-writable check would be blind from here: stop
                    self.log(f"chaos: the role sampler stopped ({self.roles.failure!r}): campaign stopped")
                    break
                if not record["converged"] and not self.recover():
                    self.log("chaos: the cluster did not recover: campaign stopped")
                    break
        return {
            "seed": seed,
            "faults_drawn": count,
            "kinds": sorted(kinds or faults.KINDS),
            "minutes": round((time.monotonic() - started) / 60, 1),
            "faults": records,
        }

    def one(self, number, kind, rng):
        """Inject, hold, heal and check one fault; its record."""
        inject, heal, role = faults.KINDS[kind]
        record = {"number": number, "kind": kind, "converged": False}
        since = None
        try:
            self.cluster.converged(timeout=CONVERGE_BOUND)
            table = self.cluster.table()
            primary = self.cluster.primary()
            target = faults.Target(
                lab=self.lab,
                monitor=self.cluster.monitor,
                primary=primary,
                secondaries=[n for n in table if n != primary],
                wait_writes=lambda timeout: self.uri_writer.wait_for_commits(1, timeout=timeout),
            )
            acked = {w: len(w.acknowledged) for w in self.writers}
            wall_since = time.time()
            since = time.monotonic()
            details = inject(target, rng, role)
            held = time.monotonic()
            record.update(details, primary_before=primary, held_s=round(held - since, 1))
            # Commits acknowledged while the fault held, from 2 s in (a commit in flight when it struck
            # may still come back): with both secondaries cut off, a synchronous commit has no standby.
            record["acknowledged_during"] = {
                name: sum(1 for at, _ in list(w.acked_by.values())[acked[w] :] if since + 2 <= at <= held)
                for name, w in self.named_writers.items()
            }
            heal(target, details)
            healed = time.monotonic()
            self.converge(record)
            record["converge_s"] = round(time.monotonic() - healed, 1)
            record["converged"] = True
            for writer in self.writers:
                writer.wait_for_commits(5, timeout=120)
            record["primary_after"] = self.cluster.primary()
            if record["primary_after"] != primary:
                events = self.cluster.call("pgfailover.events", "count=200", timeout=60)
                record["phases_s"] = failover_phases(events, wall_since, primary, record["primary_after"])
            # pg_autoctl's hard-coded 10 s wait for its postgres controller, from the keepers' journals.
            record["keeper_stalls"] = keeper_stalls(self.lab, self.cluster.nodes, wall_since, time.time())
            if record["keeper_stalls"] and self.stall_journals:
                self.save_journals(number, kind, wall_since)
        except (AssertionError, SaltError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            record["error"] = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        finally:
            record.update(self.checks(since or time.monotonic()))
        return record

    def converge(self, record):
        """
        Wait for the formation to converge within the bound; a failover wedged
        in fast_forward is ended by rebuilding the wedged node
        (pgfailover.orch.replace_node's rebuild), recorded under ``rebuilt``.
        """
        deadline = time.monotonic() + CONVERGE_BOUND
        wedged_since = None
        while time.monotonic() < deadline:
            try:
                table = self.cluster.table()
            except SaltError:  # the monitor's minion may still be reconnecting after a heal: ask again
                time.sleep(POLL)
                continue
            if is_converged(list(table.values())):
                break
            sent = [name for name, node in table.items() if node["assigned_group_state"] == "fast_forward"]
            if any(node["assigned_group_state"] in WRITABLE for node in table.values()):
                wedged_since = None
            elif sent and wedged_since is None:
                wedged_since = time.monotonic()
            if sent and wedged_since is not None and time.monotonic() - wedged_since > WEDGE_AFTER:
                self.rebuild(record, sent[0], time.monotonic() - wedged_since)
                return
            time.sleep(POLL)
        self.cluster.converged(timeout=max(30, int(deadline - time.monotonic())))

    def rebuild(self, record, node, wedged_s):
        """The known issues' way out of a wedged failover: the node rebuilt, then converged."""
        record["rebuilt"] = {"node": node, "wedged_s": round(wedged_s, 1)}
        self.log(
            f"chaos: {node} wedged in fast_forward for {wedged_s:.0f} s: rebuilding it (orch.replace_node)"
        )
        self.cluster.orchestrate_ok("pgfailover.orch.replace_node", {"replace_node": {"rebuild": [node]}})
        self.cluster.converged(timeout=CONVERGE_BOUND)

    def save_journals(self, number, kind, wall_since):
        """Every node's keeper journal since the fault, for reading what led to a 10 s stall."""
        os.makedirs(self.stall_journals, exist_ok=True)
        for node in self.cluster.nodes:
            journal = self.lab.run(
                node, "journalctl", "--no-pager", "-o", "short-precise", f"--since=@{int(wall_since)}",
                "-u", f"pgautofailover-node-{node}", check=False, timeout=60,
            ).stdout  # fmt: skip
            with open(os.path.join(self.stall_journals, f"{number:03d}-{kind}-{node}.log"), "w") as f:
                f.write(journal)

    @property
    def writers(self):
        return [self.uri_writer, self.proxy_writer]

    @property
    def named_writers(self):
        return {"uri": self.uri_writer, "haproxy": self.proxy_writer}

    def checks(self, since):
        """Outage per writer, rows acknowledged so far and lost now, and sweeps with two writable nodes."""
        result = {
            "outage_s": {},
            "acknowledged": {},
            "lost": {},
            "two_writable": self.roles.overlaps(since)[:5],
        }
        for name, writer in self.named_writers.items():
            result["outage_s"][name] = round(writer.longest_wait(since), 2)
            result["acknowledged"][name] = len(writer.acknowledged)
            try:
                lost = writer.missing()
            except Exception as exc:
                result["lost"][name] = f"not checked: {str(exc).strip()[:300]}"
                continue
            result["lost"][name] = len(lost)
            if lost:
                result.setdefault("lost_rows", {})[name] = writer.describe(lost[:10], since)
        return result

    def recover(self):
        """After a failed fault: every host up and linked, maintenance off, the disk freed; converged?"""
        for host in [self.cluster.monitor, *self.cluster.nodes, self.proxy_host]:
            try:
                self.lab.start(host)  # first: a host that is not running has no link to heal
                self.lab.heal(host)
                if host in self.cluster.nodes:
                    self.lab.run(host, "rm", "-f", faults.FILLER, check=False)
                    self.lab.salt(host, "pgfailover.disable_maintenance", check=False, timeout=120)
            except (SaltError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
                self.log(f"chaos: recovering {host}: {exc}")
        try:
            self.cluster.converged(timeout=RECOVERY_BOUND)
        except (AssertionError, SaltError) as exc:
            self.log(f"chaos: not converged after recovery: {exc}")
            return False
        return True


def summary(record):
    """One line for the log."""
    outage = " ".join(f"{name} {seconds:.1f} s" for name, seconds in record.get("outage_s", {}).items())
    converged = f"converged in {record['converge_s']} s" if record["converged"] else "NOT CONVERGED"
    return (
        f"{record['kind']} on {','.join(record.get('hosts', []))}: outage {outage}; {converged}; "
        f"lost {record.get('lost')}; two writable {len(record.get('two_writable', []))}"
        + (f"; error {record['error'][:200]}" if record.get("error") else "")
    )


def write_json(result, path):
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
