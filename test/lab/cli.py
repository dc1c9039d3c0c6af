"""bin/lab: bring lab hosts up and down, enter them, drive Salt, inject faults."""

import argparse
import os
import sys
import time

from lab import hosts, image, master, network
from lab.paths import HOSTS, STATE, SUBNET


def up(names, log=print):
    """Build what is missing, boot the named hosts, return when all answer test.ping."""
    for name in names:
        hosts.check_name(name)
    network.ensure_bridge()
    image.build_repo(log)
    master.start()
    master.sync_modules()
    for name in names:
        if not hosts.is_running(name):
            log(f"lab: booting {name} ({hosts.address(name)})")
            hosts.boot(name, log)
    hosts.write_hosts_files()
    try:
        master.wait_ping(names)
    except TimeoutError as exc:
        raise TimeoutError("\n".join([str(exc), *hosts.minion_logs(names)])) from None
    log(f"lab: {', '.join(names)} answer test.ping")


def down(log=print):
    """Everything gone: hosts, disks, bridge, master. Safe to repeat, and after a crash."""
    names = sorted(os.listdir(HOSTS)) if os.path.isdir(HOSTS) else []
    hosts.remove(*names)
    master.remove()
    network.remove_bridge()
    for leftover in ("addresses.json",):
        path = os.path.join(STATE, leftover)
        if os.path.exists(path):
            os.remove(path)
    log("lab: down" + (f" (removed {', '.join(names)})" if names else ""))


def status():
    lines = [f"bridge {'up' if network.bridge_exists() else 'absent'}; guard route "
             f"{'present' if network.guard_present() else 'MISSING'} for {SUBNET}"]  # fmt: skip
    lines.append(f"master {'pid ' + str(master.pid()) if master.pid() else 'stopped'}")
    for name in hosts.known_hosts():
        state = "running" if hosts.is_running(name) else "stopped"
        link = ""
        if state == "running":
            link = ", link up" if network.host_link_up(name) else ", PARTITIONED"
        lines.append(f"{name:12} {hosts.address(name):15} {state}{link}")
    return "\n".join(lines)


def _exec(argv):
    os.execvp(argv[0], argv)


PASS_THROUGH = ("salt", "salt-run", "salt-key")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if os.geteuid() != 0:
        print("bin/lab: the lab needs root (systemd-nspawn, mounts, bridges)", file=sys.stderr)
        return 2
    network.ensure_guard()
    # The Salt CLIs take their own options: hand them over untouched.
    if argv[:1] and argv[0] in PASS_THROUGH:
        _exec(master.cli_argv(argv[0], argv[1:]))
    if argv[:1] == ["salt-call"] and len(argv) > 1:
        _exec(hosts.nsenter_argv(argv[1], ["salt-call", *argv[2:]]))
    parser = argparse.ArgumentParser(prog="bin/lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="boot hosts (building what is missing)").add_argument("hosts", nargs="+")
    sub.add_parser("down", help="remove every host, the bridge and the master")
    sub.add_parser("status", help="bridge, guard route, master, hosts")
    sub.add_parser("build", help="build the base image and the local apt repository")
    p = sub.add_parser("exec", help="run a command in a host: bin/lab exec HOST -- CMD...")
    p.add_argument("host")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("shell", help="a login shell in a host").add_argument("host")
    for tool in PASS_THROUGH:
        sub.add_parser(tool, help=f"{tool} ARGS...: {tool} against the lab master")
    sub.add_parser("salt-call", help="salt-call HOST ARGS...: salt-call in a host")
    sub.add_parser("pillar", help="install pillar files for the lab master").add_argument("files", nargs="+")
    for fault, text in (
        ("kill", "power cut: no clean shutdown"),
        ("start", "boot again, same disk"),
        ("stop", "clean shutdown"),
        ("partition", "cut the host off the network both ways"),
        ("heal", "reconnect a partitioned host"),
    ):
        sub.add_parser(fault, help=text).add_argument("host")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (hosts.LabError, TimeoutError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


def _dispatch(args):
    command = args.command
    if command == "up":
        start = time.monotonic()
        up(args.hosts)
        print(f"lab: up in {time.monotonic() - start:.1f} s")
    elif command == "down":
        down()
    elif command == "status":
        print(status())
    elif command == "build":
        image.build_repo()
    elif command == "exec":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        _exec(hosts.nsenter_argv(args.host, cmd or ["/bin/true"]))
    elif command == "shell":
        _exec(hosts.nsenter_argv(args.host, ["/bin/bash", "-l"], interactive=True))
    elif command == "pillar":
        master.install_pillar(args.files)
    elif command == "kill":
        hosts.kill(args.host)
    elif command == "stop":
        hosts.stop(args.host)
    elif command == "start":
        hosts.boot(args.host)
        master.wait_ping([args.host])
    elif command == "partition":
        network.set_host_link(args.host, up=False)
    elif command == "heal":
        network.set_host_link(args.host, up=True)
    return 0
