"""
A pg_auto_failover cluster on this machine's loopback, for functional tests.

Instances run as the postgres user with their own HOME, XDG directories and
ports under one base directory; ``pg_autoctl run`` processes are started in
their own session and stopped by process group. Nothing is left behind after
``close()``.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BINDIR = "/usr/lib/postgresql/15/bin"
PG_AUTOCTL = "/usr/bin/pg_autoctl"
SERVICE_USER = "postgres"
# How the functional tests create nodes: loopback, trust, self-signed TLS.
NODE_OPTIONS = {"auth": "trust", "ssl": "self-signed", "hostname": "127.0.0.1"}


def have_pg_autoctl():
    """Functional tests need root (to run as postgres) and pg_autoctl installed."""
    return os.geteuid() == 0 and os.access(PG_AUTOCTL, os.X_OK)


def free_port():
    """A TCP port nothing listens on now (PostgreSQL binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalCluster:
    """Paths, ports and ``pg_autoctl run`` processes of a loopback cluster."""

    def __init__(self):
        # /var/tmp, not pytest's tmp_path: the postgres user must reach it.
        self.base = tempfile.mkdtemp(prefix="pgfailover-functional-", dir="/var/tmp")
        os.chmod(self.base, 0o755)
        self.home = os.path.join(self.base, "home")
        self.runtime_dir = os.path.join(self.base, "run")
        account = pwd.getpwnam(SERVICE_USER)
        for path in (self.home, self.runtime_dir):
            os.makedirs(path, mode=0o700)
            os.chown(path, account.pw_uid, account.pw_gid)
        os.chown(self.base, account.pw_uid, account.pw_gid)
        self._processes = {}

    def pgdata(self, name):
        return os.path.join(self.base, name)

    def conn(self, pgdata=None, **extra):
        """Connection options for the execution module and the states."""
        options = {
            "user": SERVICE_USER,
            "home": self.home,
            "runtime_dir": self.runtime_dir,
            "bindir": BINDIR,
            "pg_autoctl": PG_AUTOCTL,
        }
        if pgdata:
            options["pgdata"] = pgdata
        options.update(extra)
        return options

    def environment(self):
        return {
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_DATA_HOME": os.path.join(self.home, ".local", "share"),
            "XDG_RUNTIME_DIR": self.runtime_dir,
            "PATH": f"{BINDIR}:/usr/bin:/bin",
        }

    def pg_autoctl_argv(self, *args):
        """argv running pg_autoctl as the service user with the cluster's environment."""
        env_args = [f"{key}={value}" for key, value in self.environment().items()]
        return ["runuser", "-u", SERVICE_USER, "--", "env", *env_args, PG_AUTOCTL, *args]

    def pg_autoctl(self, *args, check=True):
        """Run pg_autoctl directly as the service user (for set-up and cross-checks)."""
        return subprocess.run(
            self.pg_autoctl_argv(*args),
            capture_output=True,
            text=True,
            errors="replace",
            check=check,
            cwd=self.home,
        )

    def start(self, pgdata):
        """Start ``pg_autoctl run`` for an instance, as its service unit would."""
        if pgdata in self._processes:
            return
        log = open(pgdata + ".log", "ab")  # noqa: SIM115 - kept open for the process' life
        self._processes[pgdata] = (
            subprocess.Popen(
                self.pg_autoctl_argv("run", "--pgdata", pgdata),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
            ),
            log,
        )

    def stop(self, pgdata, timeout=60):
        """Stop an instance's ``pg_autoctl run`` by its process group."""
        process, log = self._processes.pop(pgdata, (None, None))
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(10)
        # postgres children share the group; wait until none is left.
        deadline = time.monotonic() + timeout
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        _signal_group(process.pid, signal.SIGKILL)
        log.close()

    def running(self, pgdata):
        return pgdata in self._processes and self._processes[pgdata][0].poll() is None

    def close(self):
        for pgdata in list(self._processes):
            self.stop(pgdata)
        shutil.rmtree(self.base, ignore_errors=True)


def _signal_group(pgid, signum):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
