"""
The lab's cluster as the integration tests drive it: the pillar the lab's
master serves, orchestrations, the monitor's view, and a writer through the
formation URI; and how a scenario's write downtime is recorded.
"""

import importlib.util
import json
import os

import yaml

from helpers.writer import DOWNTIMES, Writer, client_uri
from lab.paths import REPO
from lab.session import SaltError, orchestrate_failures

PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")
APP_PASSWORD = "lab-app-Zi8v"  # test/salt/pillar/lab_cluster.sls
DBNAME = "appdb"  # test/salt/pillar/lab_cluster.sls


def _execution_module():
    path = os.path.join(REPO, "_modules", "pgfailover.py")
    spec = importlib.util.spec_from_file_location("pgfailover", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# pg_autoctl's state numbering, as the execution module reads state files, and
# the states in which a node takes writes: the execution module's own.
_MODULE = _execution_module()
NODE_STATES = _MODULE._NODE_STATES
WRITABLE = _MODULE.WRITABLE_STATES
is_converged = _MODULE.is_converged
# The monitor's state table, read on its host (no Salt round-trip): for samplers.
SHOW_STATE = (
    "runuser -u postgres -- env HOME=/var/lib/postgresql XDG_RUNTIME_DIR=/run/pgfailover "
    "pg_autoctl show state --json --pgdata /var/lib/postgresql/pgaf/monitor"
)


class Cluster:
    """The pillar the lab's master serves and what the tests ask of the cluster."""

    def __init__(self, lab, workdir):
        self.lab = lab
        self.workdir = workdir
        self.monitor = "mon"
        self.nodes = ["pg1", "pg2", "pg3"]
        self.overrides = {}  # pillar keys every install_pillar of this cluster sets (its failover profile...)

    def pillar_data(self, nodes=None, monitor=None, node_options=None, **overrides):
        """The lab pillar with these nodes (``node_options``: more keys per node name) and overrides."""
        with open(PILLAR) as f:
            data = yaml.safe_load(f)
        nodes = self.nodes if nodes is None else nodes
        data["pgfailover"].update({**self.overrides, **overrides})
        options = node_options or {}
        data["pgfailover"]["nodes"] = [{"name": name, **options.get(name, {})} for name in nodes]
        data["pgfailover"]["monitor"]["minion"] = monitor or self.monitor
        return data

    def install_pillar(self, nodes=None, monitor=None, node_options=None, **overrides):
        """The lab pillar (see pillar_data) given to every minion and the master."""
        data = self.pillar_data(nodes, monitor, node_options, **overrides)
        path = os.path.join(self.workdir, "lab_cluster.sls")
        with open(path, "w") as f:
            yaml.safe_dump(data, f)
        self.lab.pillar(path)

    def orchestrate(self, name, pillar=None):
        args = ["state.orchestrate", name] + ([f"pillar={json.dumps(pillar)}"] if pillar else [])
        return self.lab.salt_run(*args, check=False)

    def orchestrate_ok(self, name, pillar=None):
        result = self.orchestrate(name, pillar)
        assert result and result.get("retcode", 1) == 0, (
            orchestrate_failures(result) or json.dumps(result)[:3000]
        )
        return result

    def call(self, function, *args, timeout=120):
        return self.lab.salt(self.monitor, function, *args, timeout=timeout)[self.monitor]

    def table(self):
        return {node["nodename"]: node for node in self.call("pgfailover.state")}

    def history(self, count=40):
        """The monitor's last events, one line each: for failure messages."""
        try:
            rows = self.call("pgfailover.events", f"count={count}", timeout=30)
        except SaltError as exc:
            return [f"(no events: {exc})"]
        return [
            f"{e.get('eventtime', '')[11:23]} {e.get('nodename')} {e.get('description', '')[:160]}"
            for e in rows
        ]

    def diagnosis(self, names, lines=40):
        """
        What each running node's host shows of its keeper and PostgreSQL, read
        without Salt: for failure messages when a node does not converge.
        """
        pgdata = "/var/lib/postgresql/pgaf/{0}"
        newest_log = f"$(ls -t {pgdata}/log/*.log | head -n 1)"
        journal = ["journalctl", "-u", "pgautofailover-node-{0}", "-n", str(lines), "--no-pager"]
        probes = [
            ("journal", [*journal, "-o", "short-precise"]),
            ("processes", ["ps", "-u", "postgres", "-o", "pid,ppid,stat,etime,wchan:20,args"]),
            ("postmaster.pid", ["sh", "-c", f"cat {pgdata}/postmaster.pid || true"]),
            ("postgres log", ["sh", "-c", f"tail -n {lines} {newest_log} || true"]),
        ]
        report, running = [], self.lab.running()
        for name in names:
            if name not in running:
                report.append(f"--- {name}: host not running")
                continue
            for title, argv in probes:
                result = self.lab.run(name, *(arg.format(name) for arg in argv), check=False, timeout=30)
                report.append(f"--- {name} {title}:")
                report.extend((result.stdout + result.stderr).rstrip().splitlines())
        return report

    def rows_on_nodes(self, table, ids):
        """
        Which of ``ids`` each running node's PostgreSQL holds in ``table``, read
        on its host (a partitioned node too): for lost-row failure messages.
        """
        wanted = ",".join(str(int(row_id)) for row_id in ids)
        query = (
            f"SELECT pg_is_in_recovery(), coalesce(string_agg(id::text, ',' ORDER BY id), '') "
            f"FROM {table} WHERE id IN ({wanted})"
        )
        report, running = [], self.lab.running()
        for name in self.nodes:
            if name not in running:
                report.append(f"{name}: host not running")
                continue
            psql = ["psql", "-p", "5432", "-d", DBNAME, "-AtF", " ", "-c", query]
            result = self.lab.run(name, "runuser", "-u", "postgres", "--", *psql, check=False, timeout=15)
            answer = result.stdout.strip() or result.stderr.strip()[:200]
            report.append(f"{name} (in recovery, ids held): {answer}")
        return report

    def primary(self):
        return self.call("pgfailover.primary")["nodename"]

    def converged(self, nodes=None, timeout=240):
        """
        Wait until the formation has converged with these nodes; the table, by
        node name. When it has not, the SaltError carries the monitor's last events.
        """
        expected = sorted(nodes or self.nodes)
        try:
            rows = self.call(
                "pgfailover.wait_converged",
                f"timeout={timeout}",
                f"expect_nodes={len(expected)}",
                timeout=timeout + 30,
            )
        except SaltError as exc:
            raise SaltError("\n".join([str(exc), *self.history(), *self.diagnosis(expected)])) from exc
        table = {node["nodename"]: node for node in rows}
        assert sorted(table) == expected
        return table

    def secondaries(self):
        return [name for name, node in self.table().items() if node["assigned_group_state"] not in WRITABLE]

    def writer(self, scenario):
        """A writer through the formation URI (target_session_attrs=read-write), by address."""
        uri = client_uri(self.call("pgfailover.uri")["formation"], self.lab.address, "app")
        return Writer(uri, APP_PASSWORD, table=f"writes_{scenario}")


def record(scenario, writer, since, cluster=None, timeline=None):
    """
    Keep the scenario's write downtime; fail on any acknowledged row missing,
    saying when and by which server each was acknowledged and, given the
    cluster, which lost rows each node holds, what the monitor did meanwhile
    and each node's keeper journal and PostgreSQL log; ``timeline`` (lines)
    adds what the test itself sampled.
    """
    DOWNTIMES[scenario] = round(writer.downtime(since), 2)
    missing = writer.missing()
    if missing:
        lines = [
            f"{scenario}: {len(missing)} acknowledged rows lost (read back on {writer.checked_on})",
            *writer.describe(missing[:20], since),
            *(timeline or []),
        ]
        if cluster:
            lines += [
                *cluster.rows_on_nodes(writer.table, missing[:20]),
                *cluster.history(),
                *cluster.diagnosis(cluster.nodes, lines=120),
            ]
        raise AssertionError("\n".join(lines))
