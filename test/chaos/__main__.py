"""
bin/chaos: a seeded campaign of faults on a lab cluster built for it, with
its JSON, Markdown report and chart.

    bin/chaos [--seed 1] [--faults 60] [--json docs/reliability/results.json]
              [--kinds kill-primary,switchover,...] [--max-minutes 150]
              [--profile fast] [--keeper-log debug|trace] [--stall-journals DIR]
              [--report-only]

Builds the lab (monitor mon; nodes pg1, pg2, pg3, each with a 2 GiB data disk
of its own that a fault can fill; HAProxy on host proxy) with the formula,
runs the faults (test/chaos/faults.py for the kinds), and tears the lab down
even when it fails. The report and chart go next to the JSON file.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

from chaos import campaign, faults, report
from helpers.cluster import Cluster
from helpers.sigterm import interrupt_on_sigterm
from lab import hosts
from lab.paths import REPO
from lab.session import Lab

PROXY_HOST = "proxy"
DATA_DISK_MB = 2048


def build(lab, profile, workdir, log):
    """The campaign's cluster from bare hosts: its Cluster helper, converged."""
    lab.down()
    cluster = Cluster(lab, workdir)
    for node in cluster.nodes:
        hosts.give_data_disk(node, DATA_DISK_MB)
    lab.up(cluster.monitor, *cluster.nodes, PROXY_HOST)
    cluster.install_pillar(
        haproxy={"minions": [PROXY_HOST]}, number_sync_standbys=1, failover={"profile": profile}
    )
    log("chaos: building the cluster with pgfailover.orch")
    cluster.orchestrate_ok("pgfailover.orch")
    cluster.converged()
    return cluster


# A drop-in for a node's unit: pg_autoctl run with more log (-vv, -vvv), for reading a stall.
LOG_DROP_IN = "[Service]\nExecStart=\nExecStart=/usr/bin/pg_autoctl run {verbosity} --pgdata {pgdata}\n"


def keepers_logging_more(cluster, verbosity):
    """Every node's unit runs pg_autoctl run ``verbosity``, restarted one at a time, converged after each."""
    for node in cluster.nodes:
        unit = f"pgautofailover-node-{node}"
        directory = f"/etc/systemd/system/{unit}.service.d"
        content = LOG_DROP_IN.format(verbosity=verbosity, pgdata=f"{hosts.DATA_ROOT}/{node}")
        cluster.lab.run(
            node, "sh", "-c", f"mkdir -p {directory} && cat > {directory}/log-level.conf", input=content
        )
        cluster.lab.run(node, "systemctl", "daemon-reload")
        cluster.lab.run(node, "systemctl", "restart", unit)
        cluster.converged()


def machine():
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    return f"{os.cpu_count()} cores, {memory} GiB, {platform.platform()}"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=60)
    parser.add_argument("--json", default=os.path.join(REPO, "docs", "reliability", "results.json"))
    parser.add_argument("--kinds", help=f"comma-separated subset of: {', '.join(sorted(faults.KINDS))}")
    parser.add_argument("--max-minutes", type=float, default=150.0)
    parser.add_argument("--profile", default="fast", help="the pillar's failover profile")
    parser.add_argument("--report-only", action="store_true", help="redraw the report from --json")
    parser.add_argument(
        "--keeper-log", choices=("debug", "trace"), help="pg_autoctl run -vv (debug) or -vvv (trace)"
    )
    parser.add_argument(
        "--stall-journals", help="directory for the keepers' journals of faults with a 10 s stall"
    )
    args = parser.parse_args(argv)
    command = "bin/chaos " + " ".join(argv if argv is not None else sys.argv[1:])
    directory = os.path.dirname(os.path.abspath(args.json))
    if args.report_only:
        with open(args.json) as f:
            result = json.load(f)
        report.write(result, args.json, result.get("command", command))
        return 0
    kinds = args.kinds.split(",") if args.kinds else None
    unknown = sorted(set(kinds or ()) - set(faults.KINDS))
    if unknown:
        parser.error(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(sorted(faults.KINDS))}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    interrupt_on_sigterm()  # a stopped campaign still tears the lab down
    lab = Lab()
    with tempfile.TemporaryDirectory(prefix="pgfailover-chaos-") as workdir:
        try:
            cluster = build(lab, args.profile, workdir, print)
            if args.keeper_log:
                keepers_logging_more(cluster, {"debug": "-vv", "trace": "-vvv"}[args.keeper_log])
            chaos = campaign.Campaign(cluster, PROXY_HOST, stall_journals=args.stall_journals)
            result = chaos.run(args.seed, args.faults, kinds, args.max_minutes)
        finally:
            lab.down()
    result.update(
        command=command,
        profile=args.profile,
        converge_bound=campaign.CONVERGE_BOUND,
        commit=commit.stdout.strip(),
        date=datetime.date.today().isoformat(),
        machine=machine(),
    )
    os.makedirs(directory, exist_ok=True)
    campaign.write_json(result, args.json)
    report.write(result, args.json, command)
    total = report.totals(result)
    print(f"chaos: {json.dumps(total)}; report in {directory}")
    return (
        0 if total["converged"] == total["faults"] and total["lost"] == 0 and not total["two_writable"] else 1
    )


if __name__ == "__main__":
    sys.exit(main())
