"""
The health endpoint's decisions (pgfailover/files/pgfailover_health.py) on
keeper states and PostgreSQL facts; the service itself answers HAProxy on the
lab (test/integration/haproxy).
"""

import importlib.util
import os
import sys
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMITS = {"replica_max_lag_bytes": 1024, "replica_max_silence": 15}


@pytest.fixture(scope="module")
def health():
    # The hosts have Debian's python3-psycopg2; the decisions tested here never connect.
    if "psycopg2" not in sys.modules:
        sys.modules["psycopg2"] = types.SimpleNamespace(Error=Exception, connect=None)
    path = os.path.join(REPO, "pgfailover", "files", "pgfailover_health.py")
    spec = importlib.util.spec_from_file_location("pgfailover_health", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keeper_file(health, tmp_path, assigned, current, version=1):
    states = health.NODE_STATES
    raw = health.KEEPER_STATE.pack(
        version, 150000, 1300, 202209061, 7, 2, 0, states.index(assigned), 5, 1700000000,
        states.index(current), 0, 0, 0,
    )  # fmt: skip
    path = tmp_path / "pg_autoctl.state"
    path.write_bytes(raw.ljust(1024, b"\0"))
    return str(path)


def facts(in_recovery=False, read_only=False, receiver=None, silence=None, lag=None):
    return {
        "in_recovery": in_recovery,
        "read_only": read_only,
        "wal_receiver": receiver,
        "seconds_since_primary": silence,
        "replay_lag_bytes": lag,
    }


def test_the_state_file_is_read_as_pg_autoctl_writes_it(health, tmp_path):
    path = keeper_file(health, tmp_path, "wait_primary", "stop_replication")
    assert health.read_keeper_state(path) == {"assigned": "wait_primary", "current": "stop_replication"}
    with pytest.raises(ValueError, match="version 2"):
        health.read_keeper_state(keeper_file(health, tmp_path, "primary", "primary", version=2))


@pytest.mark.parametrize("state", ["single", "wait_primary", "primary", "apply_settings"])
def test_a_writable_primary_is_ok(health, state):
    assert health.primary_reasons({"assigned": state, "current": state}, facts()) == []


@pytest.mark.parametrize(
    ("keeper", "postgres", "reason"),
    [
        ({"assigned": "primary", "current": "primary"}, facts(in_recovery=True), "in recovery"),
        # a writable state by the keeper, but fenced with default_transaction_read_only
        ({"assigned": "wait_primary", "current": "wait_primary"}, facts(read_only=True), "read_only"),
        ({"assigned": "wait_primary", "current": "stop_replication"}, None, "state is stop_replication"),
        ({"assigned": "demote_timeout", "current": "primary"}, facts(), "assigned state is demote_timeout"),
        ({"assigned": "draining", "current": "draining"}, facts(), "current state is draining"),
        # PostgreSQL not asked (None) when the keeper already rules the node out
        ({"assigned": "secondary", "current": "secondary"}, None, "assigned state is secondary"),
        (None, facts(), "state file"),
        ({"assigned": "primary", "current": "primary"}, None, "does not answer"),
    ],
)
def test_anything_short_of_a_writable_primary_is_refused(health, keeper, postgres, reason):
    assert any(reason in r for r in health.primary_reasons(keeper, postgres))


def test_a_streaming_caught_up_secondary_is_a_replica(health):
    secondary = {"assigned": "secondary", "current": "secondary"}
    ok = facts(in_recovery=True, receiver="streaming", silence=0.4, lag=0)
    assert health.replica_reasons(secondary, ok, LIMITS) == []


@pytest.mark.parametrize(
    ("keeper", "postgres", "reason"),
    [
        ("catchingup", facts(True, receiver="streaming", silence=0.1, lag=0), "current state is catchingup"),
        ("secondary", facts(True, receiver=None, silence=None, lag=0), "WAL receiver is not running"),
        ("secondary", facts(True, receiver="streaming", silence=40.0, lag=0), "nothing from the primary"),
        ("secondary", facts(True, receiver="streaming", silence=0.1, lag=4096), "replay lag 4096"),
        ("primary", facts(False), "assigned state is primary"),
        # the keeper says secondary but PostgreSQL was promoted behind its back
        ("secondary", facts(False, receiver=None, silence=None, lag=None), "not in recovery"),
        ("report_lsn", facts(True, receiver=None), "assigned state is report_lsn"),
    ],
)
def test_unhealthy_or_lagging_secondaries_are_not_replicas(health, keeper, postgres, reason):
    reasons = health.replica_reasons({"assigned": keeper, "current": keeper}, postgres, LIMITS)
    assert any(reason in r for r in reasons), reasons


class CountingPostgres:
    """Stands in for the socket connection: counts the times PostgreSQL is asked."""

    def __init__(self, answer):
        self.answer, self.asked = answer, 0

    def facts(self):
        self.asked += 1
        return self.answer


@pytest.mark.parametrize(
    ("path", "assigned", "current", "asked"),
    [
        # a killed old primary rejoining: pg_autoctl's crash recovery before pg_rewind
        # ends with a smart shutdown, which any session of ours would hold
        ("/primary", "catchingup", "demoted", 0),
        ("/replica", "catchingup", "demoted", 0),
        ("/primary", "secondary", "secondary", 0),
        ("/replica", "primary", "primary", 0),
        ("/primary", "primary", "primary", 1),
        ("/replica", "secondary", "secondary", 1),
        ("/health", "catchingup", "demoted", 1),
    ],
)
def test_postgres_is_asked_only_when_the_keeper_allows_the_check_to_pass(
    health, tmp_path, path, assigned, current, asked
):
    config = {"node": "pg1", "state_file": keeper_file(health, tmp_path, assigned, current), **LIMITS}
    checks = health.Checks({**config, "socket_dir": str(tmp_path), "pgport": 5432})
    checks.postgres = CountingPostgres(facts(in_recovery=True, receiver="streaming", silence=0.1, lag=0))
    status, body = checks.answer(path)
    assert checks.postgres.asked == asked
    assert body["postgres_asked"] is bool(asked)
    assert status == (200 if (path, current) in {("/replica", "secondary"), ("/health", "demoted")} else 503)
