"""
Fixtures over the lab (real nspawn hosts and a real salt-master). Skipped,
with the reason, where the lab cannot run; torn down at the end of the session
even when tests fail.
"""

import os
import statistics

import pytest

from helpers.proxy import FLOODS, HEALTH_LATENCIES_MS
from helpers.writer import DOWNTIMES
from lab.session import Lab, unavailable_reason

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(items):
    """Every test under test/integration is marked lab (a pytestmark in a conftest file is ignored)."""
    for item in items:
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    session = Lab()
    session.down()  # whatever a killed earlier run left behind
    try:
        yield session
    finally:
        session.down()


@pytest.fixture
def partitioned(lab):
    """Cut a host off the network for one test; healed afterwards whatever happens."""
    cut = []

    def partition(name):
        lab.partition(name)
        cut.append(name)

    yield partition
    for name in cut:
        lab.heal(name)


@pytest.fixture
def cut_off(lab):
    """Cut a host's routes to some others for one test (lab.cut_routes); restored afterwards, always."""
    cut = []

    def cut_routes(name, others):
        cut.append((name, list(others)))
        lab.cut_routes(name, others)

    yield cut_routes
    for name, others in cut:
        if name in lab.running():
            lab.restore_routes(name, others)


@pytest.fixture
def killed(lab):
    """Power a host off for one test; booted again afterwards whatever happens."""
    down = []

    def kill(name):
        lab.kill(name)
        down.append(name)

    yield kill
    for name in down:
        if name not in lab.running():
            lab.start(name)


def pytest_terminal_summary(terminalreporter):
    """The write downtime each scenario of this run measured, and the health endpoints' answer times."""
    if DOWNTIMES:
        terminalreporter.section("write downtime (s), last commit before to first commit after")
        for scenario, seconds in DOWNTIMES.items():
            terminalreporter.write_line(f"{scenario:24} {seconds:6.2f}")
    if FLOODS:
        terminalreporter.section("health endpoint floods")
        for line in FLOODS:
            terminalreporter.write_line(line)
    if HEALTH_LATENCIES_MS:
        times = sorted(HEALTH_LATENCIES_MS)
        terminalreporter.section("health endpoint answers (ms), from this machine to the lab's hosts")
        terminalreporter.write_line(
            f"{len(times)} answers: median {statistics.median(times):.1f}, "
            f"95th percentile {times[int(len(times) * 0.95) - 1]:.1f}, max {times[-1]:.1f}"
        )
