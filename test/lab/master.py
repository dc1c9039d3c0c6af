"""
The lab's salt-master: listens on the bridge address only, serves this
repository as file_roots and the lab pillar directory as pillar_roots, and
accepts minion keys automatically. The Salt CLIs run against its config.
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
    - {REPO}
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
    os.makedirs(CONFIG_DIR, exist_ok=True)
    os.makedirs(PILLAR, exist_ok=True)
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
    """Stop the master's whole process group (it forks workers)."""
    leader = pid()
    if leader is None:
        return
    os.killpg(leader, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(leader, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(leader, signal.SIGKILL)
    os.remove(PID_FILE)


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
        raise TimeoutError(f"no test.ping answer from {', '.join(sorted(missing))} within {timeout} s")


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
