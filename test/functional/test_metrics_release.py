"""
The exporter's shutdown release (pgfailover/files/metrics/release.sh), run
for real as the service user against a real PostgreSQL 15: while the
postmaster is in a smart shutdown it ends the metrics role's sessions, which
would hold that shutdown for good, and no other session.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg
import pytest

from helpers.local_cluster import BINDIR, SERVICE_USER, free_port, have_pg_autoctl
from lab.paths import REPO

RELEASE = os.path.join(REPO, "pgfailover", "files", "metrics", "release.sh")
ROLE = "pgfailover_metrics"


def as_service_user(*argv, timeout=30):
    return subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", *argv], capture_output=True, text=True, timeout=timeout
    )


class Instance:
    """A throwaway PostgreSQL on a Unix socket only, with the metrics role."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="pgfailover-release-", dir="/var/tmp")
        account = pwd.getpwnam(SERVICE_USER)
        os.chown(self.base, account.pw_uid, account.pw_gid)
        self.pgdata = os.path.join(self.base, "data")
        self.port = free_port()

    def start(self):
        initdb = as_service_user(f"{BINDIR}/initdb", "-D", self.pgdata, "--auth=trust", "-U", "postgres")
        assert initdb.returncode == 0, initdb.stderr
        options = f"-p {self.port} -k {self.base} -c listen_addresses=''"
        log = os.path.join(self.base, "log")
        start = as_service_user(
            f"{BINDIR}/pg_ctl", "-D", self.pgdata, "-o", options, "-l", log, "-w", "start"
        )
        assert start.returncode == 0, start.stderr
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN")

    def connect(self, user):
        return psycopg.connect(host=self.base, port=self.port, user=user, dbname="postgres", autocommit=True)

    def postmaster(self):
        with open(os.path.join(self.pgdata, "postmaster.pid")) as pidfile:
            return int(pidfile.readline())

    def status(self):
        with open(os.path.join(self.pgdata, "postmaster.pid")) as pidfile:
            return pidfile.read().splitlines()[7].strip()

    def close(self):
        if os.path.exists(os.path.join(self.pgdata, "postmaster.pid")):  # stopped by PID file
            as_service_user(f"{BINDIR}/pg_ctl", "-D", self.pgdata, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base)


@pytest.fixture
def instance():
    if not have_pg_autoctl():
        pytest.skip("needs root and PostgreSQL 15 (Debian: postgresql-15)")
    running = Instance()
    try:
        running.start()
        yield running
    finally:
        running.close()


@pytest.fixture
def release(instance):
    """The release loop running as the service user, as its unit runs it; stopped by PID afterwards."""
    process = subprocess.Popen(
        ["sh", RELEASE, instance.pgdata, ROLE],
        user=SERVICE_USER,
        group=SERVICE_USER,
        extra_groups=[],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said = []

    def output():
        if process.poll() is None:
            process.terminate()
        said.extend(process.communicate(timeout=10)[0].splitlines())
        return said

    yield output
    output()


def alive(conn):
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def test_a_running_instance_is_left_alone(instance, release):
    with instance.connect(ROLE) as metrics:
        time.sleep(2.5)  # two rounds of the loop: nothing is ever due while PostgreSQL runs
        assert alive(metrics)
    assert release() == []


def test_a_smart_shutdown_ends_the_metrics_sessions_and_no_other(instance, release):
    postmaster = instance.postmaster()
    with (
        instance.connect(ROLE) as metrics,
        instance.connect(ROLE) as second,
        instance.connect("postgres") as other,
    ):
        pids = sorted(str(conn.info.backend_pid) for conn in (metrics, second))
        os.kill(postmaster, signal.SIGTERM)  # what pg_ctl stop -m smart sends
        wait_for(lambda: instance.status() == "stopping", 10, "smart shutdown")
        wait_for(lambda: not alive(metrics) and not alive(second), 10, "end of the metrics sessions")
        assert alive(other)  # a user's session is the user's business
    # with the last session gone the smart shutdown completes
    wait_for(lambda: not os.path.exists(os.path.join(instance.pgdata, "postmaster.pid")), 10, "shutdown")
    (said,) = release()
    assert said.startswith(f"metrics-release: ended the sessions of {ROLE} (PID ")
    assert sorted(said.split("(PID ")[1].split(")")[0].split()) == pids
