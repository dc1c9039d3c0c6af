"""The lab itself: four real hosts, a real master, faults, and a clean teardown."""

import errno
import os
import socket

import pytest

from lab import hosts, network
from lab.paths import APT_REPO_MOUNT, BRIDGE, STATE, SUBNET

HOSTS = ("labmon", "labpg1", "labpg2", "labpg3")

PROBE = """
import socket, sys
s = socket.socket(); s.settimeout(1.5)
try:
    s.connect((sys.argv[1], 9)); print("open")
except ConnectionRefusedError:
    print("reachable")
except OSError as e:
    print("unreachable", e)
"""


def probe(lab, source, target):
    """'reachable' when the target answers (a refused port is an answer)."""
    return lab.run(source, "python3", "-c", PROBE, target).stdout.split()[0]


@pytest.fixture(scope="module")
def four_hosts(lab):
    lab.up(*HOSTS)
    return HOSTS


def test_four_hosts_answer_ping_through_the_master(lab, four_hosts):
    assert lab.salt("*", "test.ping") == dict.fromkeys(HOSTS, True)


def test_each_host_has_its_own_name_address_and_systemd(lab, four_hosts):
    addresses = set()
    for name in HOSTS:
        assert lab.run(name, "hostname").stdout.strip() == name
        assert lab.run(name, "cat", "/proc/1/comm").stdout.strip() == "systemd"
        address = lab.run(name, "ip", "-4", "-br", "addr", "show", "host0").stdout.split()[2]
        assert address == f"{lab.address(name)}/24"
        addresses.add(address)
    assert len(addresses) == len(HOSTS)


def test_a_file_written_on_one_host_is_absent_on_the_others(lab, four_hosts):
    lab.run("labpg1", "sh", "-c", "echo mine > /root/only-here")
    for other in HOSTS[1:]:
        if other != "labpg1":
            assert lab.run(other, "test", "-e", "/root/only-here", check=False).returncode == 1
    assert lab.run("labpg1", "cat", "/root/only-here").stdout == "mine\n"


def test_hosts_resolve_and_reach_each_other_by_name(lab, four_hosts):
    for name in HOSTS:
        assert lab.run("labmon", "getent", "hosts", name).stdout.split()[0] == lab.address(name)
    assert probe(lab, "labmon", "labpg3") == "reachable"


def test_image_has_no_postgresql_but_sees_the_local_repository(lab, four_hosts):
    assert lab.run("labpg1", "sh", "-c", "command -v pg_ctl pg_autoctl", check=False).returncode != 0
    assert lab.run("labpg1", "test", "-f", f"{APT_REPO_MOUNT}/Packages.gz").returncode == 0
    assert lab.run("labpg1", "touch", f"{APT_REPO_MOUNT}/x", check=False).returncode != 0  # read-only


def test_salt_call_and_exec_pass_results_through(lab, four_hosts):
    assert lab.salt_call("labpg2", "grains.get", "id") == {"local": "labpg2"}
    assert lab.run("labpg2", "sh", "-c", "exit 3", check=False).returncode == 3


def test_kill_makes_a_host_unreachable_and_start_brings_it_back_with_its_files(lab, four_hosts, killed):
    lab.run("labpg2", "sh", "-c", "echo kept > /root/survives && sync")
    killed("labpg2")
    assert "labpg2" not in lab.running()
    assert probe(lab, "labmon", "labpg2") == "unreachable"
    lab.start("labpg2")
    assert lab.run("labpg2", "cat", "/root/survives").stdout == "kept\n"
    assert lab.salt("labpg2", "test.ping") == {"labpg2": True}


def test_partition_blocks_both_ways_and_heal_restores(lab, four_hosts, partitioned):
    partitioned("labpg3")
    assert probe(lab, "labmon", "labpg3") == "unreachable"
    assert probe(lab, "labpg3", "labmon") == "unreachable"
    lab.heal("labpg3")
    assert probe(lab, "labmon", "labpg3") == "reachable"
    assert probe(lab, "labpg3", "labmon") == "reachable"


def test_down_leaves_only_the_guard_route(lab, four_hosts):
    lab.down()
    assert not network.bridge_exists()
    assert network.lab_routes() == [f"unreachable {SUBNET} metric {network.GUARD_METRIC} "]
    with open("/proc/mounts") as mounts:
        assert not [line for line in mounts if STATE in line]
    assert not [name for name in HOSTS if hosts.is_running(name)]
    assert not os.path.exists(os.path.join(STATE, "hosts")) or not os.listdir(os.path.join(STATE, "hosts"))
    own_namespace = hosts.pid_namespace("self")
    in_containers = [
        p for p in os.listdir("/proc") if p.isdigit() and hosts.pid_namespace(p) not in (None, own_namespace)
    ]
    assert in_containers == []
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _started_by_lab(p)]
    assert leftovers == []
    assert BRIDGE not in network.ip("-br", "link").stdout


def test_with_the_lab_down_a_lab_address_fails_locally():
    """The guard route answers at once; nothing follows the default route out."""
    network.ensure_guard()
    route = network.ip("route", "get", str(SUBNET.network_address + 12), check=False)
    assert route.returncode != 0 or route.stdout.startswith("unreachable")
    with socket.socket() as sock:
        sock.settimeout(3)
        with pytest.raises(OSError) as failure:
            sock.connect((str(SUBNET.network_address + 12), 4505))
    assert failure.value.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)


def _started_by_lab(pid):
    """A process whose command line names the lab's state directory (master, nspawn)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return STATE in f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
