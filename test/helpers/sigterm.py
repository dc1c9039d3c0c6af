"""
pytest plugin: SIGTERM ends a run the way Ctrl-C does.

Python's default for SIGTERM is to die at once, so fixtures never tear down
what they started (the lab's hosts, the functional tests' pg_autoctl
processes). A CI job that is stopped, or ``kill PID``, sends SIGTERM; turned
into KeyboardInterrupt, pytest runs every pending teardown before it exits.
"""

import signal


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def interrupt_on_sigterm():
    """From now on SIGTERM raises KeyboardInterrupt (for scripts: bin/chaos)."""
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_sessionstart(session):
    interrupt_on_sigterm()
