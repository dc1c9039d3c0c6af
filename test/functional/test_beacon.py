"""
The beacon (_beacons/pgfailover.py), loaded by Salt's loader over the real
execution module and a real node of the functional formation: its first
reading is a baseline and fires nothing, an unchanged node fires nothing,
each change of the node's current or assigned state fires one event with both
states and the previous ones, and a monitor's data directory fires nothing.
"""

import copy
import os

import pytest
import salt.loader

from lab.paths import REPO


@pytest.fixture
def beacons(minion_opts, local_cluster, modules):
    opts = copy.deepcopy(minion_opts)
    opts["pgfailover"] = local_cluster.conn()
    opts["beacons_dirs"] = [os.path.join(REPO, "_beacons")]
    return salt.loader.beacons(opts, modules, context={})


def test_the_configuration_is_checked(beacons):
    validate = beacons["pgfailover.validate"]
    assert validate([{"interval": 2}, {"pgdata": "/var/lib/postgresql/pgaf/pg1"}])[0] is True
    valid, message = validate([{"interval": 2}, {"pgdta": "/x"}])
    assert valid is False and "unknown key(s) pgdta" in message
    assert validate({"interval": 2})[0] is False


def test_one_event_per_state_change_none_for_the_baseline_or_the_monitor(beacons, modules, formation):
    beacon = beacons["pgfailover.beacon"]
    pgdata = formation.nodes["node2"]["pgdata"]
    config = [{"interval": 1}, {"pgdata": pgdata}]
    modules.pgfailover.wait_converged(timeout=60, pgdata=formation.monitor)
    assert beacon(config) == []  # the baseline
    assert beacon(config) == []  # nothing changed
    assert beacon([{"interval": 1}, {"pgdata": formation.monitor}]) == []
    modules.pgfailover.enable_maintenance(pgdata=pgdata)
    try:
        modules.pgfailover.wait_node_state("node2", "maintenance", timeout=60, pgdata=pgdata)
        events = beacon(config)
    finally:
        modules.pgfailover.disable_maintenance(pgdata=pgdata)
        modules.pgfailover.wait_node_state("node2", "secondary", timeout=60, pgdata=pgdata)
        # The primary goes back from wait_primary too: the next tests expect the formation as it was.
        modules.pgfailover.wait_converged(timeout=90, pgdata=formation.monitor)
    assert len(events) == 1, events
    event = events[0]
    assert event["node"] == "node2" and event["tag"] == f"state/{event['current_group_state']}"
    assert (event["previous_current_group_state"], event["previous_assigned_group_state"]) == (
        "secondary",
        "secondary",
    )
    assert "maintenance" in (event["current_group_state"], event["assigned_group_state"])
    back = beacon(config)
    assert len(back) == 1 and back[0]["current_group_state"] == "secondary", back
    assert beacon(config) == []
