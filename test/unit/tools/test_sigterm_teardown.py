"""A run stopped by SIGTERM still tears down its fixtures (helpers/sigterm.py)."""

import os
import signal
import subprocess
import sys
import time

from lab.paths import REPO

TEST_DIR = os.path.join(REPO, "test")

SLOW_TEST = """
import pytest, time

@pytest.fixture(scope="session")
def resource(tmp_path_factory):
    yield
    open({marker!r}, "w").write("torn down")

def test_slow(resource):
    open({started!r}, "w").write("running")
    time.sleep(60)
"""


def test_sigterm_runs_the_session_teardown(tmp_path):
    marker, started = tmp_path / "torn_down", tmp_path / "started"
    (tmp_path / "test_slow.py").write_text(SLOW_TEST.format(marker=str(marker), started=str(started)))
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "helpers.sigterm",
            "test_slow.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": TEST_DIR},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
    assert started.exists(), run.communicate()[0]
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=30)[0]
    assert marker.read_text() == "torn down", output
