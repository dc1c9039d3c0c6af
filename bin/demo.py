"""
make demo: a pg_auto_failover cluster built by the formula in the lab.

Boots four lab hosts (a monitor and three PostgreSQL nodes), gives the master
the demo pillar (the lab's, with metrics on), runs `salt-run state.orchestrate
pgfailover.orch`, then prints the cluster state, the formation URI and the
monitor exporter's pgfailover metrics. The lab stays up: explore it with
bin/lab, remove it with `make lab-down`.
"""

import os
import sys
import tempfile
import time
import urllib.request

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "test"))

from lab.session import Lab, orchestrate_failures, unavailable_reason  # noqa: E402

HOSTS = ("mon", "pg1", "pg2", "pg3")
PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")
METRICS_PORT = 9187


def main():
    reason = unavailable_reason()
    if reason:
        sys.exit(f"demo: {reason}")
    lab = Lab()
    started = time.monotonic()
    lab.up(*HOSTS)
    with open(PILLAR) as f:
        pillar = yaml.safe_load(f)
    pillar["pgfailover"]["metrics"] = {"port": METRICS_PORT}
    with tempfile.TemporaryDirectory(prefix="pgfailover-demo-") as workdir:
        path = os.path.join(workdir, "demo_cluster.sls")
        with open(path, "w") as f:
            yaml.safe_dump(pillar, f)
        lab.pillar(path)
    print("demo: salt-run state.orchestrate pgfailover.orch")
    result = lab.salt_run("state.orchestrate", "pgfailover.orch", check=False)
    if not result or result.get("retcode", 1) != 0:
        sys.exit("demo: orchestrate failed:\n" + orchestrate_failures(result))
    print(f"demo: cluster converged in {time.monotonic() - started:.0f} s\n")
    nodes = lab.salt_call("mon", "pgfailover.state")["local"]
    print(f"{'node':6} {'host:port':16} {'health':8} {'current':12} assigned")
    for node in nodes:
        print(
            f"{node['nodename']:6} {node['nodehost'] + ':' + str(node['nodeport']):16} "
            f"{'healthy' if node['health'] == 1 else node['health']!s:8} "
            f"{node['current_group_state']:12} {node['assigned_group_state']}"
        )
    uris = lab.salt_call("mon", "pgfailover.uri")["local"]
    print(f"\nformation URI: {uris['formation']}")
    print(f"monitor URI:   {uris['monitor']}")
    metrics_url = f"http://{lab.address('mon')}:{METRICS_PORT}/metrics"
    print(f"\nmetrics (curl -s {metrics_url} | grep ^pgfailover_node_is_primary):")
    with urllib.request.urlopen(metrics_url, timeout=30) as answer:
        lines = answer.read().decode().splitlines()
    print("\n".join(line for line in lines if line.startswith("pgfailover_node_is_primary")))
    print("\nThe lab stays up: bin/lab status, bin/lab shell pg1, make lab-down to remove it.")


if __name__ == "__main__":
    main()
