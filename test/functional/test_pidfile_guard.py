"""
The units' ExecStartPre (pgfailover/files/pidfile_guard.sh), run for real
against a directory with a postmaster.pid whose PID is a live process of
another kind, a process named postgres working elsewhere or in PGDATA, or
nothing at all.
"""

import os
import shutil
import subprocess

import pytest

from lab.paths import REPO

GUARD = os.path.join(REPO, "pgfailover", "files", "pidfile_guard.sh")


def guard(pgdata):
    result = subprocess.run(["sh", GUARD, str(pgdata)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def pgdata(tmp_path):
    path = tmp_path / "pgdata"
    path.mkdir()
    return path


@pytest.fixture
def process(tmp_path):
    """Start `sleep` under a given name in a given directory; stopped by PID afterwards."""
    started = []

    def start(name, cwd):
        program = tmp_path / name
        shutil.copy("/bin/sleep", program)
        started.append(subprocess.Popen([str(program), "60"], cwd=cwd))
        return started[-1].pid

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def write_pidfile(pgdata, pid):
    (pgdata / "postmaster.pid").write_text(f"{pid}\n{pgdata}\n1795814409\n5432\n/var/run/postgresql\n*\n")


def test_no_pidfile_is_left_alone(pgdata):
    assert guard(pgdata) == ""
    assert not (pgdata / "postmaster.pid").exists()


def test_a_pid_now_used_by_another_process_is_removed(pgdata, process):
    pid = process("pg_autoctl", pgdata)
    write_pidfile(pgdata, pid)
    assert guard(pgdata) == f"pidfile-guard: removed stale {pgdata}/postmaster.pid (PID {pid} is pg_autoctl)"
    assert not (pgdata / "postmaster.pid").exists()


def test_a_pid_that_is_not_running_is_removed(pgdata):
    ended = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    pid = int(ended.stdout)
    write_pidfile(pgdata, pid)
    assert guard(pgdata).endswith(f"(PID {pid} is not running)")
    assert not (pgdata / "postmaster.pid").exists()


def test_a_postgres_working_in_another_directory_does_not_count(pgdata, process, tmp_path):
    write_pidfile(pgdata, process("postgres", tmp_path))
    assert "removed stale" in guard(pgdata)
    assert not (pgdata / "postmaster.pid").exists()


@pytest.mark.parametrize("sign", [1, -1], ids=["postmaster", "standalone backend"])
def test_a_postgres_working_in_pgdata_keeps_its_pidfile(pgdata, process, sign):
    write_pidfile(pgdata, sign * process("postgres", pgdata))
    assert guard(pgdata) == ""
    assert (pgdata / "postmaster.pid").exists()


def test_a_pidfile_without_a_pid_is_removed(pgdata):
    (pgdata / "postmaster.pid").write_text("\n")
    assert guard(pgdata).endswith("(no PID in it)")
    assert not (pgdata / "postmaster.pid").exists()
