"""
Verifier of the kitchen single-host suite (testinfra: `pytest --hosts=...`):
monitor and two nodes on one host, units enabled and running (with the pidfile guard), a primary and a
secondary. Run by `kitchen verify`; collected by the normal test run only for
syntax (it needs testinfra's `host` fixture, so it is skipped without it).
"""

import json

import pytest

testinfra = pytest.importorskip("testinfra", reason="kitchen verifier: needs pytest-testinfra")


@pytest.mark.parametrize(
    "unit", ["pgautofailover-monitor", "pgautofailover-node-node1", "pgautofailover-node-node2"]
)
def test_units_enabled_and_running(host, unit):
    service = host.service(unit)
    assert service.is_enabled and service.is_running
    guard = host.file("/usr/local/lib/pgfailover/pidfile-guard")
    assert guard.is_file and guard.mode == 0o755
    assert (
        "ExecStartPre=/usr/local/lib/pgfailover/pidfile-guard"
        in host.file(f"/etc/systemd/system/{unit}.service").content_string
    )


def test_primary_and_secondary(host):
    out = host.check_output("salt-call --local --out=json pgfailover.state")
    states = {n["nodename"]: n["current_group_state"] for n in json.loads(out)["local"]}
    assert sorted(states.values()) == ["primary", "secondary"]
