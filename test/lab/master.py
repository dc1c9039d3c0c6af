"""
The lab's salt-master: listens on the bridge address only, serves the
formula (as a user's master would: its SLS tree and custom modules, not the
whole repository) and the test states as file_roots and the lab pillar
directory as pillar_roots, and accepts minion keys automatically. The Salt
CLIs run against its config.
"""

import json
import os
import shutil
import signal
import subprocess
import time

from lab.paths import BRIDGE_ADDRESS, MASTER, PILLAR, REPO, VENV_BIN

CONFIG_DIR = os.path.join(MASTER, "conf")
PID_FILE = os.path.join(MASTER, "master.pid")
# What a master serves of the formula. Serving the repository itself would make
# every state run list the virtualenv's ~17,000 files from the master: 1.5-3 s a
# step, which a real master does not pay.
FORMULA_ROOT = os.path.join(MASTER, "formula")
FORMULA_DIRS = ("pgfailover", "_modules", "_states", "_beacons")


def _config():
    return f"""\
# Written by the lab.
interface: {BRIDGE_ADDRESS}
auto_accept: True
user: root
root_dir: {MASTER}
pki_dir: {MASTER}/pki
cachedir: {MASTER}/cache
sock_dir: {MASTER}/sock
pidfile: {MASTER}/salt-master.pid
log_file: {MASTER}/master.log
# Debug: the secret tests search this log for passwords.
log_level_logfile: debug
file_roots:
  base:
    - {FORMULA_ROOT}
    - {REPO}/test/salt/states
pillar_roots:
  base:
    - {PILLAR}
worker_threads: 4
keep_jobs_seconds: 86400
"""


def pid():
    try:
        with open(PID_FILE) as f:
            value = int(f.read())
    except (FileNotFoundError, ValueError):
        return None
    return value if os.path.exists(f"/proc/{value}") else None


def start():
    if pid():
        return
    _wait_ports_free()
    os.makedirs(CONFIG_DIR, exist_ok=True)
    os.makedirs(PILLAR, exist_ok=True)
    _link_formula()
    with open(os.path.join(CONFIG_DIR, "master"), "w") as f:
        f.write(_config())
    if not os.path.exists(os.path.join(PILLAR, "top.sls")):
        with open(os.path.join(PILLAR, "top.sls"), "w") as f:
            f.write("base: {}\n")
    log = open(os.path.join(MASTER, "master.out"), "ab")  # noqa: SIM115 - handed to the daemon
    process = subprocess.Popen(
        [os.path.join(VENV_BIN, "salt-master"), "-c", CONFIG_DIR, "--log-level=quiet"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    with open(PID_FILE, "w") as f:
        f.write(str(process.pid))
    _wait_listening(process)


def _link_formula():
    """
    The formula's directories in the master's file root, as links to this
    checkout (edits show at once). The lab's state is one per machine: links
    another checkout left are pointed here again.
    """
    os.makedirs(FORMULA_ROOT, exist_ok=True)
    for name in FORMULA_DIRS:
        link, target = os.path.join(FORMULA_ROOT, name), os.path.join(REPO, name)
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(target, link)


# The master's publish and request ports: minions that boot before it listens
# on both lose their first authentication attempts.
PORTS = (4505, 4506)


def listening_ports():
    """The TCP ports something listens on at the bridge address or at any address (/proc/net/tcp)."""
    # /proc/net/tcp writes an IPv4 address as the hex of its 4 bytes in host (little-endian) order.
    ours = {f"{int(BRIDGE_ADDRESS):08X}", "00000000"}
    ports = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            in_order = "".join(reversed([address[i : i + 2] for i in range(0, 8, 2)]))
            if fields[3] == "0A" and in_order in ours:  # 0A: LISTEN
                ports.add(int(port, 16))
    return ports


def _wait_ports_free(timeout=15):
    """An earlier master's processes may still hold the ports for a moment; a new one could not bind them."""
    deadline = time.monotonic() + timeout
    while busy := set(PORTS) & listening_ports():
        if time.monotonic() > deadline:
            raise RuntimeError(f"ports {sorted(busy)} are taken before the lab's master starts (`ss -ltnp`)")
        time.sleep(0.2)


def diagnosis():
    """What the master shows: whether it runs, which of its ports listen, the end of its output and log."""
    lines = [f"master pid {pid()}, listening on {sorted(set(PORTS) & listening_ports())} of {PORTS}"]
    quiet = ("[DEBUG", "[TRACE", "[PROFILE")
    for name, keep in (
        ("master.out", lambda line: True),
        ("master.log", lambda line: not any(level in line for level in quiet)),
    ):
        try:
            with open(os.path.join(MASTER, name), errors="replace") as f:
                tail = [line.rstrip() for line in f if keep(line)][-15:]
        except FileNotFoundError:
            tail = ["(none)"]
        lines += [f"--- {name}:", *tail]
    return lines


def _wait_listening(process, timeout=60):
    """Return once the new master listens on both ports; fail with its output if it exits or never does."""
    deadline = time.monotonic() + timeout
    while not set(PORTS) <= listening_ports():
        if process.poll() is not None:
            problem = f"salt-master exited with {process.returncode}"
            raise RuntimeError("\n".join([problem, *diagnosis()]))
        if time.monotonic() > deadline:
            problem = f"salt-master not listening on {PORTS} within {timeout} s"
            raise TimeoutError("\n".join([problem, *diagnosis()]))
        time.sleep(0.2)


def sync_modules():
    """
    The formula's execution modules on the master too: orchestrations render
    map.jinja there, which validates the pillar with pgfailover_pillar.
    """
    subprocess.run(
        cli_argv("salt-run", ["saltutil.sync_modules", "--out=quiet"]),
        check=True,
        capture_output=True,
        timeout=120,
    )


def stop(timeout=5):
    """Stop the master's whole process group (it forks workers); SIGKILL what is left after ``timeout``."""
    leader = pid()
    if leader is None:
        return
    os.killpg(leader, signal.SIGTERM)
    if not _group_gone(leader, timeout):
        os.killpg(leader, signal.SIGKILL)
        _group_gone(leader, 10)
    os.remove(PID_FILE)


def _group_gone(leader, timeout):
    """Whether the process group ends within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(leader, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def remove():
    stop()
    shutil.rmtree(MASTER, ignore_errors=True)
    shutil.rmtree(PILLAR, ignore_errors=True)


def cli_argv(tool, args):
    """argv for salt, salt-run, salt-key against the lab master."""
    return [os.path.join(VENV_BIN, tool), "-c", CONFIG_DIR, *args]


def salt_json(*args, timeout=120):
    """`salt ARGS --out=json --static`, parsed; {} when nothing answered."""
    result = subprocess.run(
        cli_argv("salt", [*args, "--out=json", "--static", f"--timeout={timeout}"]),
        capture_output=True,
        text=True,
        timeout=timeout + 30,
    )
    try:
        return json.loads(result.stdout)
    except ValueError:  # "No minions matched the target..." while minions connect
        return {}


def delete_key(minion):
    subprocess.run(cli_argv("salt-key", ["-y", "-d", minion]), capture_output=True, check=False)


def wait_ping(minions, timeout=120):
    """Return when every minion answers test.ping through the master."""
    deadline = time.monotonic() + timeout
    missing = set(minions)
    while missing and time.monotonic() < deadline:
        answered = salt_json("-L", ",".join(sorted(missing)), "test.ping", timeout=5)
        missing -= {m for m, ok in answered.items() if ok is True}
        if missing:
            time.sleep(0.5)
    if missing:
        problem = f"no test.ping answer from {', '.join(sorted(missing))} within {timeout} s"
        raise TimeoutError("\n".join([problem, *diagnosis()]))


def install_pillar(files):
    """Copy pillar files in; write a top.sls giving each file to every minion unless one is given."""
    os.makedirs(PILLAR, exist_ok=True)
    names = []
    for path in files:
        target = os.path.join(PILLAR, os.path.basename(path))
        shutil.copy(path, target)
        names.append(os.path.splitext(os.path.basename(path))[0])
    if "top" not in names:
        with open(os.path.join(PILLAR, "top.sls"), "w") as f:
            f.write("base:\n  '*':\n" + "".join(f"    - {name}\n" for name in names))
    salt_json("*", "saltutil.refresh_pillar", "wait=True", timeout=60)
