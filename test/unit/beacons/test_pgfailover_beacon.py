"""
Unit tests of the beacon (_beacons/pgfailover.py): its configuration check
and the events it fires for a sequence of local readings. The readings come
from a stand-in for ``pgfailover.state local=True``; the beacon on real hosts
is tested in test/functional/test_states.py and the day-2 lab tests.
"""

import pytest
from salt.exceptions import CommandExecutionError

from helpers.source import load

beacon = load("_beacons/pgfailover.py", "pgfailover_beacon")


class Readings:
    """Stands in for pgfailover.state local=True: answers each reading in turn (an exception is raised)."""

    def __init__(self, *readings):
        self.readings = list(readings)
        self.kwargs = []

    def __call__(self, local=False, **kwargs):
        assert local is True  # never the monitor: the beacon must keep working while it is down
        self.kwargs.append(kwargs)
        reading = self.readings.pop(0)
        if isinstance(reading, Exception):
            raise reading
        return reading


def node(current, assigned=None):
    return {
        "nodename": "pg2",
        "formation": "default",
        "current_group_state": current,
        "assigned_group_state": assigned or current,
    }


@pytest.fixture
def run(monkeypatch):
    """Runs the beacon over readings, the way the minion calls it once per interval; returns the events."""
    context = {}
    monkeypatch.setattr(beacon, "__context__", context, raising=False)

    def events(readings, config=({"interval": 1},)):
        state = Readings(*readings)
        monkeypatch.setattr(beacon, "__salt__", {"pgfailover.state": state}, raising=False)
        fired = [beacon.beacon(list(config)) for _ in readings]
        return fired, state

    return events


@pytest.mark.parametrize(
    ("config", "valid", "says"),
    [
        ([{"interval": 2}], True, "Valid"),
        ([{"interval": 2}, {"pgdata": "/var/lib/postgresql/pgaf/pg2"}], True, "Valid"),
        ({"interval": 2}, False, "must be a list of dicts"),
        ([{"beacon_module": "pgfailover"}, {"interval": 2}, {"pgdata": "/x"}], True, "Valid"),
        ([{"interval": 2}, {"pgdir": "/x"}], False, "unknown key(s) pgdir; allowed: interval, pgdata"),
    ],
)
def test_the_configuration_is_checked(config, valid, says):
    ok, message = beacon.validate(config)
    assert ok is valid and says in message


def test_the_first_reading_is_the_baseline_and_each_change_fires_one_event(run):
    fired, _ = run(
        [node("secondary"), node("secondary"), node("secondary", "prepare_promotion"), node("primary")]
    )
    assert fired[:2] == [[], []]
    assert fired[2] == [
        {
            "tag": "state/secondary",
            "node": "pg2",
            "formation": "default",
            "current_group_state": "secondary",
            "assigned_group_state": "prepare_promotion",
            "previous_current_group_state": "secondary",
            "previous_assigned_group_state": "secondary",
        }
    ]
    assert [event["tag"] for event in fired[3]] == ["state/primary"]


def test_a_node_that_cannot_be_read_fires_nothing_and_keeps_its_last_reading(run):
    unreadable = CommandExecutionError("pg_autoctl state file not found")
    fired, _ = run([node("secondary"), unreadable, node("secondary"), node("catchingup", "secondary")])
    assert fired[:3] == [[], [], []]
    assert fired[3][0]["previous_current_group_state"] == "secondary"


def test_a_monitor_host_and_a_host_without_the_formula_fire_nothing(run, monkeypatch):
    monitor_reading = {"monitor": "/var/lib/postgresql/pgaf/monitor"}
    fired, _ = run([monitor_reading, monitor_reading])
    assert fired == [[], []]
    monkeypatch.setattr(beacon, "__salt__", {}, raising=False)
    assert beacon.beacon([{"interval": 1}]) == []


def test_a_second_node_on_the_host_is_read_at_its_own_pgdata_and_remembered_apart(run):
    config = ({"interval": 1}, {"pgdata": "/var/lib/postgresql/pgaf/pg4"})
    fired, state = run([node("secondary"), node("maintenance")], config=config)
    assert state.kwargs == [{"pgdata": "/var/lib/postgresql/pgaf/pg4"}] * 2
    assert [event["tag"] for event in fired[1]] == ["state/maintenance"]
    assert set(beacon.__context__) == {"pgfailover.beacon./var/lib/postgresql/pgaf/pg4"}


def test_a_beacon_named_otherwise_runs_this_module_for_another_nodes_formation(run):
    """As Salt calls it for `pgfailover_billing: [beacon_module: pgfailover, ...]`."""
    config = (
        {"beacon_module": "pgfailover"},
        {"pgdata": "/var/lib/postgresql/pgaf/pgb1"},
        {"_beacon_name": "pgfailover_billing"},
    )
    billing = [
        dict(node("secondary"), nodename="pgb1", formation="billing"),
        dict(node("catchingup", "secondary"), nodename="pgb1", formation="billing"),
    ]
    fired, state = run(billing, config=config)
    assert state.kwargs == [{"pgdata": "/var/lib/postgresql/pgaf/pgb1"}] * 2
    assert [(event["node"], event["formation"], event["tag"]) for event in fired[1]] == [
        ("pgb1", "billing", "state/catchingup")
    ]
