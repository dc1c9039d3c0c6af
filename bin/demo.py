"""
make demo: a pg_auto_failover cluster built by the formula in the lab.

Boots four lab hosts (a monitor and three PostgreSQL nodes), gives the master
the demo pillar, runs `salt-run state.orchestrate pgfailover.orch`, then
prints the cluster state and the formation URI. The lab stays up: explore it
with bin/lab, remove it with `make lab-down`.
"""

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "test"))

from lab.session import Lab, orchestrate_failures, unavailable_reason  # noqa: E402

HOSTS = ("mon", "pg1", "pg2", "pg3")
PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")


def main():
    reason = unavailable_reason()
    if reason:
        sys.exit(f"demo: {reason}")
    lab = Lab()
    started = time.monotonic()
    lab.up(*HOSTS)
    lab.pillar(PILLAR)
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
    print("\nThe lab stays up: bin/lab status, bin/lab shell pg1, make lab-down to remove it.")


if __name__ == "__main__":
    main()
