"""
Fixtures over the lab (real nspawn hosts and a real salt-master). Skipped,
with the reason, where the lab cannot run; torn down at the end of the session
even when tests fail.
"""

import pytest

from helpers.writer import DOWNTIMES
from lab.session import Lab, unavailable_reason

pytestmark = pytest.mark.lab


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
    """The write downtime each failure or day-2 scenario of this run measured."""
    if DOWNTIMES:
        terminalreporter.section("write downtime (s), last commit before to first commit after")
        for scenario, seconds in DOWNTIMES.items():
            terminalreporter.write_line(f"{scenario:24} {seconds:6.2f}")
