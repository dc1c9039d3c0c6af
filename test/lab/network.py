"""
The lab's bridge, the route that keeps lab traffic on this machine, and host links.

The guard is an ``unreachable`` route for the lab subnet with a high metric:
while the bridge is up its connected route wins; once the bridge is gone the
guard still answers, so a packet for a lab address can never follow the
default route out of the machine.
"""

import subprocess

from lab.paths import BRIDGE, BRIDGE_ADDRESS, SUBNET

GUARD_METRIC = 4242


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def ensure_guard():
    ip("route", "replace", "unreachable", str(SUBNET), "metric", str(GUARD_METRIC))


def guard_present():
    out = ip("route", "show", "table", "main", "exact", str(SUBNET)).stdout
    return any(
        line.startswith("unreachable") and f"metric {GUARD_METRIC}" in line for line in out.splitlines()
    )


def lab_routes():
    """Every route of the main table for the lab subnet, one line each."""
    return [
        line
        for line in ip("route", "show", "table", "main", "exact", str(SUBNET)).stdout.splitlines()
        if line
    ]


def bridge_exists():
    return ip("link", "show", BRIDGE, check=False).returncode == 0


def ensure_bridge():
    ensure_guard()
    if not bridge_exists():
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{BRIDGE_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def remove_bridge():
    if bridge_exists():
        ip("link", "del", BRIDGE)
    ensure_guard()


def host_link(name):
    """The host-side veth systemd-nspawn creates: 'vb-' + name, cut to 15 characters."""
    return ("vb-" + name)[:15]


def set_host_link(name, up):
    ip("link", "set", host_link(name), "up" if up else "down")


def host_link_up(name):
    out = ip("-br", "link", "show", host_link(name), check=False).stdout
    return bool(out) and " UP " in f" {out.split()[1]} " if out else False
