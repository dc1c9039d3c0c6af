"""
Unit tests of the day-2 safety rules (pgfailover.preflight) over state tables
shaped like the monitor's: which switchovers, rolling windows, removals,
replacements and rebuilds are refused, and with which reason. The lab tests run the same
rules against a real monitor for the common cases.
"""

import pytest
from salt.exceptions import SaltInvocationError

from helpers.source import load

pgfailover = load("_modules/pgfailover.py", "pgfailover_preflight")
pgfailover_pillar = load("_modules/pgfailover_pillar.py", "pgfailover_pillar_preflight")


@pytest.fixture(autouse=True)
def loader(monkeypatch):
    """What Salt's loader gives the module here: the pillar module's name rule."""
    monkeypatch.setattr(
        pgfailover, "__salt__", {"pgfailover_pillar.is_name": pgfailover_pillar.is_name}, raising=False
    )


def node(name, state="secondary", assigned=None, health=1, priority=50, quorum=True):
    return {
        "nodename": name, "nodehost": name, "nodeport": 5432, "health": health,
        "current_group_state": state, "assigned_group_state": assigned or state,
        "candidate_priority": priority, "replication_quorum": quorum, "reported_lsn": "0/3000000",
    }  # fmt: skip


@pytest.fixture
def formation(monkeypatch):
    """Serve a given table and number_sync_standbys to preflight."""
    current = {"table": [], "sync": 1}
    monkeypatch.setattr(pgfailover, "state", lambda **kwargs: current["table"])
    monkeypatch.setattr(pgfailover, "number_sync_standbys", lambda **kwargs: current["sync"])

    def serve(table, sync=1):
        current.update(table=table, sync=sync)

    return serve


THREE = [node("pg1", "primary"), node("pg2"), node("pg3")]


def test_a_converged_formation_may_switch_over_and_roll(formation):
    formation(THREE)
    assert pgfailover.preflight("switchover") == []
    assert pgfailover.preflight("switchover", target="pg3") == []
    assert pgfailover.preflight("rolling") == []


def test_switchover_to_the_primary_or_an_unknown_node_is_refused(formation):
    formation(THREE)
    assert pgfailover.preflight("switchover", target="pg1") == ["target pg1 is the primary already"]
    assert "not registered" in pgfailover.preflight("switchover", target="pg9")[0]


def test_switchover_without_a_promotable_secondary_is_refused(formation):
    formation([node("pg1", "primary"), node("pg2", priority=0), node("pg3", priority=0)], sync=0)
    assert "no healthy secondary" in pgfailover.preflight("switchover")[0]
    assert "cannot be promoted" in pgfailover.preflight("switchover", target="pg2")[0]


def test_switchover_while_not_converged_is_refused(formation):
    formation([node("pg1", "primary"), node("pg2", "catchingup", "secondary"), node("pg3")])
    assert "has not converged" in pgfailover.preflight("switchover")[0]


def test_rolling_refused_when_one_standby_in_maintenance_would_block_writes(formation):
    formation([node("pg1", "primary"), node("pg2"), node("pg3", quorum=False)], sync=1)
    (problem,) = pgfailover.preflight("rolling")
    assert "one of them in maintenance would block writes" in problem


def test_removing_the_primary_is_refused(formation):
    formation([*THREE, node("pg4")], sync=1)
    assert any("is the primary" in p for p in pgfailover.preflight("remove", nodes=["pg1"]))


def test_removal_keeping_number_sync_standbys_plus_one_is_allowed(formation):
    formation([*THREE, node("pg4")], sync=1)
    assert pgfailover.preflight("remove", nodes=["pg4"]) == []


def test_removal_below_number_sync_standbys_plus_one_is_refused(formation):
    formation([*THREE, node("pg4")], sync=1)
    (problem,) = pgfailover.preflight("remove", nodes=["pg3", "pg4"])
    assert "number_sync_standbys 1 needs 2" in problem
    # ... unless the formation's new value allows it.
    assert pgfailover.preflight("remove", nodes=["pg3", "pg4"], sync_standbys=0) == []


def test_removing_every_node_is_left_to_the_clean_orchestration(formation):
    formation(THREE, sync=0)
    assert any(
        "clean orchestration" in p for p in pgfailover.preflight("remove", nodes=["pg1", "pg2", "pg3"])
    )


def test_replacing_a_healthy_node_or_the_assigned_primary_is_refused(formation):
    formation([node("pg1", "primary", health=0), node("pg2"), node("pg3", health=0)])
    assert "still the assigned primary" in pgfailover.preflight("replace", nodes=["pg1"])[0]
    assert "is healthy" in pgfailover.preflight("replace", nodes=["pg2"])[0]
    assert pgfailover.preflight("replace", nodes=["pg3"]) == []


def test_rebuilding_the_primary_or_every_node_is_refused_a_wedged_node_is_not(formation):
    wedged = [node("pg1", "report_lsn", "fast_forward"), node("pg2", "report_lsn"), node("pg3", "report_lsn")]
    formation(wedged)
    assert pgfailover.preflight("rebuild", nodes=["pg1"]) == []
    formation(THREE)
    assert pgfailover.preflight("rebuild", nodes=["pg1"]) == [
        "node pg1 is the assigned primary: switch over first, then rebuild it"
    ]
    assert pgfailover.preflight("rebuild", nodes=["pg2"]) == []
    assert (
        "a clone needs a node to copy from" in pgfailover.preflight("rebuild", nodes=["pg1", "pg2", "pg3"])[0]
    )


def test_bad_arguments_name_the_argument(formation):
    formation(THREE)
    with pytest.raises(SaltInvocationError, match="action='drop' is not allowed"):
        pgfailover.preflight("drop")
    with pytest.raises(SaltInvocationError, match="nodes="):
        pgfailover.preflight("remove", nodes=["pg 1"])
    with pytest.raises(SaltInvocationError, match="sync_standbys must be an integer"):
        pgfailover.preflight("remove", nodes=["pg2"], sync_standbys="one")


def test_cluster_status_shows_lag_behind_the_primary(monkeypatch):
    table = [node("pg1", "primary"), dict(node("pg2"), reported_lsn="0/2FFFF00")]
    monkeypatch.setattr(pgfailover, "state", lambda **kwargs: table)
    assert pgfailover.cluster_status() == [
        "pg1 pg1:5432 primary healthy primary/primary lag -",
        "pg2 pg2:5432 standby healthy secondary/secondary lag 256 B",
    ]
