"""Where the lab keeps things, and its fixed names and addresses."""

import ipaddress
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")

# Built once per recipe and reused by every lab on the machine.
CACHE = os.environ.get("PGFAILOVER_LAB_CACHE", "/var/cache/pgfailover")
WHEELS = os.path.join(CACHE, "wheels")

# One lab per machine: its hosts' disks, the master's files, pids.
STATE = os.environ.get("PGFAILOVER_LAB_STATE", "/var/lib/pgfailover-lab")
HOSTS = os.path.join(STATE, "hosts")
MASTER = os.path.join(STATE, "master")
PILLAR = os.path.join(STATE, "pillar")
REGISTRY = os.path.join(STATE, "addresses.json")

SUBNET = ipaddress.ip_network("10.147.0.0/24")
BRIDGE = "pgfbr0"
BRIDGE_ADDRESS = SUBNET.network_address + 1
FIRST_HOST_ADDRESS = 11

# Inside every host: the local apt repository, read-only.
APT_REPO_MOUNT = "/srv/lab-apt"
SALT_VERSION = "3008.4"


def host_dir(name):
    return os.path.join(HOSTS, name)
