"""
Lab hosts: an overlayfs disk over the read-only base image, booted by
systemd-nspawn with systemd as PID 1 on the lab bridge.

Each host has a directory under the state dir with its overlay layers
(upper, work), the merged root, the nspawn pid and a console log. The
container's init is found as the nspawn process' child; commands run in the
host through nsenter.
"""

import json
import os
import signal
import subprocess
import time

from lab import image, network
from lab.paths import (
    APT_REPO_MOUNT,
    BRIDGE,
    BRIDGE_ADDRESS,
    FIRST_HOST_ADDRESS,
    HOSTS,
    REGISTRY,
    STATE,
    SUBNET,
    host_dir,
)

NAME_RULE = "lowercase letters, digits and '-', starting with a letter, at most 12 characters"
BOOT_TIMEOUT = 90


class LabError(RuntimeError):
    """A lab operation that could not be done, with the reason."""


def check_name(name):
    ok = (
        0 < len(name) <= 12
        and name[0].isalpha()
        and all(c.islower() or c.isdigit() or c == "-" for c in name)
    )
    if not ok:
        raise LabError(f"host name {name!r} is not allowed: {NAME_RULE} (veth names are cut to 15)")
    return name


# -- addresses ---------------------------------------------------------------


def _registry():
    try:
        with open(REGISTRY) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def address(name):
    """The host's fixed address: assigned when it first comes up, kept until `down`."""
    addresses = _registry()
    if name not in addresses:
        used = set(addresses.values())
        candidates = (str(SUBNET.network_address + i) for i in range(FIRST_HOST_ADDRESS, 250))
        addresses[name] = next(a for a in candidates if a not in used)
        os.makedirs(STATE, exist_ok=True)
        with open(REGISTRY, "w") as f:
            json.dump(addresses, f, indent=1)
    return addresses[name]


def known_hosts():
    return sorted(_registry())


# -- processes ---------------------------------------------------------------


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid):
    if not pid:
        return False
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def nspawn_pid(name):
    pid = _read(os.path.join(host_dir(name), "nspawn.pid"))
    return int(pid) if pid and _alive(int(pid)) else None


def _children(pid):
    children = _read(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in children.split()] if children else []


def init_pid(name):
    """The container's PID 1 seen from here: the nspawn process' child running systemd."""
    pid = nspawn_pid(name)
    if pid:
        for child in _children(pid):
            if _read(f"/proc/{child}/comm") == "systemd":
                return child
    return _orphan_init(name)


def _orphan_init(name):
    """
    A container init whose nspawn process is gone (killed alone): a systemd in
    another PID namespace whose root filesystem names this host.
    """
    own_namespace = pid_namespace("self")
    for entry in os.listdir("/proc"):
        if (
            entry.isdigit()
            and _read(f"/proc/{entry}/comm") == "systemd"
            and pid_namespace(entry) not in (None, own_namespace)
            and _root_hostname(entry) == name
        ):
            return int(entry)
    return None


def pid_namespace(pid):
    """The PID namespace of a process ('self' for this one), or None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _root_hostname(pid):
    """/etc/hostname as the process sees it (through its root), or None."""
    try:
        return _read(f"/proc/{pid}/root/etc/hostname")
    except (PermissionError, NotADirectoryError):
        return None


def processes(name):
    """PIDs (as seen here) of every process in the host's PID namespace."""
    init = init_pid(name)
    namespace = init and pid_namespace(init)
    if not namespace:
        return []
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and pid_namespace(p) == namespace]


def is_running(name):
    return init_pid(name) is not None


def running_hosts():
    if not os.path.isdir(HOSTS):
        return []
    return sorted(name for name in os.listdir(HOSTS) if is_running(name))


def nsenter_argv(name, argv, interactive=False):
    pid = init_pid(name)
    if pid is None:
        raise LabError(f"host {name} is not running (bin/lab start {name})")
    env = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    if interactive:
        env.append(f"TERM={os.environ.get('TERM', 'xterm')}")
    return ["nsenter", "-t", str(pid), "-a", *env, *argv]


def run(name, argv, check=True, timeout=None, **kwargs):
    """Run a command in a host; returns CompletedProcess (text)."""
    result = subprocess.run(
        nsenter_argv(name, argv), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if check and result.returncode != 0:
        raise LabError(f"{name}: {' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result


def minion_logs(names, lines=15):
    """The end of each running host's salt-minion journal and log, debug lines left out: for failures."""
    command = (
        f"journalctl -u salt-minion -n {lines} --no-pager -o short-precise; "
        f"grep -v -e '\\[DEBUG' -e '\\[TRACE' -e '\\[PROFILE' /var/log/salt/minion | tail -n {lines}"
    )
    report = []
    for name in names:
        if not is_running(name):
            report.append(f"--- {name}: host not running")
            continue
        result = run(name, ["sh", "-c", command], check=False, timeout=30)
        report += [f"--- {name} salt-minion:", *(result.stdout + result.stderr).rstrip().splitlines()]
    return report


# -- disks -------------------------------------------------------------------


def _mounted(path):
    with open("/proc/mounts") as mounts:
        return any(line.split()[1] == path for line in mounts)


def _mount_disk(name, base):
    layers = host_dir(name)
    root = os.path.join(layers, "root")
    for sub in ("upper", "work", "root"):
        os.makedirs(os.path.join(layers, sub), exist_ok=True)
    if not _mounted(root):
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={base},upperdir={layers}/upper,workdir={layers}/work", root],
            check=True,
        )  # fmt: skip
    return root


# A host given a data disk has its data root there (see give_data_disk).
DATA_ROOT = "/var/lib/postgresql/pgaf"


def give_data_disk(name, megabytes):
    """
    Before the host first boots: its data root (DATA_ROOT) on a disk of its
    own, a tmpfs of ``megabytes`` mounted here and bound into the host, which
    can be filled up (ENOSPC) without touching this machine's disk. It keeps
    its content across power cuts of the host, as a disk would; `remove`
    unmounts it.
    """
    os.makedirs(host_dir(name), exist_ok=True)
    with open(os.path.join(host_dir(name), "data-disk-mb"), "w") as f:
        f.write(str(int(megabytes)))


def _mount_data_disk(name):
    """The nspawn options that bind the host's data disk, mounted first ([] without one)."""
    size = _read(os.path.join(host_dir(name), "data-disk-mb"))
    if not size:
        return []
    disk = os.path.join(host_dir(name), "data")
    os.makedirs(disk, exist_ok=True)
    if not _mounted(disk):
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}m,mode=0755", "tmpfs", disk], check=True)
    return [f"--bind={disk}:{DATA_ROOT}"]


def _write(root, path, text, mode=0o644):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)
    os.chmod(full, mode)


def _configure_host(name, root):
    _write(root, "/etc/hostname", name + "\n")
    _write(root, "/etc/salt/minion_id", name + "\n")
    _write(
        root,
        "/etc/salt/minion.d/lab.conf",
        f"# Written by the lab.\nmaster: {BRIDGE_ADDRESS}\nid: {name}\n"
        "acceptance_wait_time: 1\nrandom_reauth_delay: 0\nauth_tries: 20\n"
        "# Debug: the secret tests search this log for passwords.\nlog_level_logfile: debug\n",
    )
    # Sorts before the image's 80-container-host0.network, so DHCP never wins.
    _write(
        root,
        "/etc/systemd/network/10-host0.network",
        f"[Match]\nName=host0\n\n[Network]\nAddress={address(name)}/{SUBNET.prefixlen}\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
    )


def write_hosts_files():
    """/etc/hosts on every host with a disk names every lab host."""
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{address(n)} {n}" for n in known_hosts()]
    lines.append(f"{BRIDGE_ADDRESS} salt lab-master")
    text = "# Written by the lab.\n" + "\n".join(lines) + "\n"
    for name in known_hosts():
        root = os.path.join(host_dir(name), "root")
        if _mounted(root):
            _write(root, "/etc/hosts", text)


# -- life cycle --------------------------------------------------------------


def boot(name, log=print):
    """Boot a host (its disk is kept from an earlier boot); return when systemd runs."""
    check_name(name)
    if is_running(name):
        return
    base = image.build_image(log)
    repo = image.build_repo(log)
    network.ensure_bridge()
    root = _mount_disk(name, base)
    data_disk = _mount_data_disk(name)
    _configure_host(name, root)
    write_hosts_files()
    console = open(os.path.join(host_dir(name), "console.log"), "ab")  # noqa: SIM115 - handed to nspawn
    process = subprocess.Popen(
        [
            "systemd-nspawn", "-D", root, "--boot", "--register=no", "--keep-unit",
            "-M", name, "--hostname", name, f"--network-bridge={BRIDGE}",
            f"--bind-ro={repo}:{APT_REPO_MOUNT}", "--console=passive", *data_disk,
        ],
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    console.close()
    with open(os.path.join(host_dir(name), "nspawn.pid"), "w") as f:
        f.write(str(process.pid))
    wait_booted(name)


def wait_booted(name, timeout=BOOT_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if init_pid(name):
            state = subprocess.run(
                nsenter_argv(name, ["systemctl", "is-system-running"]), capture_output=True, text=True
            ).stdout.strip()
            if state in ("running", "degraded"):
                return
        time.sleep(0.3)
    raise LabError(
        f"host {name} did not finish booting within {timeout} s (see {host_dir(name)}/console.log)"
    )


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def stop(*names, timeout=30):
    """Clean shutdown, all at once: SIGTERM to nspawn makes the container's systemd power off."""
    waiting = {}
    for name in names:
        nspawn, init = nspawn_pid(name), init_pid(name)
        if nspawn:
            os.kill(nspawn, signal.SIGTERM)
        elif init:
            os.kill(init, signal.SIGRTMIN + 4)  # systemd: poweroff
        waiting[name] = [p for p in (nspawn, init) if p]
    deadline = time.monotonic() + timeout
    for name, pids in waiting.items():
        if not _wait_gone(pids, max(0.0, deadline - time.monotonic())):
            kill(name)


def kill(name):
    """Power cut: SIGKILL to the container's init ends its whole PID namespace."""
    nspawn, init = nspawn_pid(name), init_pid(name)
    if init:
        os.kill(init, signal.SIGKILL)
    _wait_gone([p for p in (init, nspawn) if p], 15)
    if nspawn and _alive(nspawn):
        os.kill(nspawn, signal.SIGKILL)
        _wait_gone([nspawn], 5)


def remove(*names):
    """Power the hosts off (their disks are deleted next: no clean shutdown needed), delete their disks."""
    for name in names:
        if is_running(name):
            kill(name)
    for name in names:
        _remove_disk(name)


def _remove_disk(name):
    for disk in ("data", "root"):
        path = os.path.join(host_dir(name), disk)
        if _mounted(path):
            subprocess.run(["umount", path], check=True)
    subprocess.run(["rm", "-rf", "--one-file-system", host_dir(name)], check=True)
