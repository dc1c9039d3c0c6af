"""
Bad input on real, bare hosts: bad pillars of helpers.bad_pillars, one of
each kind of rule, are refused by the orchestration (and a few by highstate)
with a message naming the pillar key, and nothing appeared on any host: no
package, no file of the formula, no unit, no data directory. Every case is
refused by the same validator call at render time, and
test/unit/modules/test_pgfailover_pillar.py checks each of them on it; here
the wiring is proven, at about 6 s a case. Runs before test_orchestrate,
which needs the same hosts bare.
"""

import json
import os

import pytest
import yaml

from helpers.bad_pillars import CASES, broken, good

HOSTS = ("mon", "pg1", "pg2", "pg3")
# Whatever the formula would leave behind on a host, in one shell probe.
LEFTOVERS = (
    "for p in /usr/bin/pg_autoctl /usr/lib/postgresql /var/lib/postgresql/pgaf /var/lib/postgresql/.pgpass "
    "/etc/apt/sources.list.d/pgfailover.list /etc/postgresql-common/createcluster.d/pgfailover.conf "
    "/etc/tmpfiles.d/pgfailover.conf /run/pgfailover; do [ -e $p ] && echo $p; done; "
    "ls /etc/systemd/system | grep pgautofailover; "
    "dpkg-query -W -f '${Package} ${Status}\\n' 'postgresql*' 'pg-auto-failover*' 2>/dev/null "
    "| grep ' installed$'; "
    "true"
)


@pytest.fixture(scope="module")
def bare(lab):
    lab.up(*HOSTS)
    return lab


def install(lab, tmp_path, cluster):
    path = os.path.join(tmp_path, "lab_cluster.sls")
    with open(path, "w") as f:
        yaml.safe_dump({"pgfailover": cluster}, f)
    lab.pillar(path)


def nothing_changed(lab):
    """{host: what the formula left there} for every host where something appeared."""
    found = {host: lab.run(host, "sh", "-c", LEFTOVERS).stdout.split() for host in HOSTS}
    return {host: paths for host, paths in found.items() if paths}


# One case per kind of rule: key names, the monitor, node addresses, the
# formation, authentication, certificates, passwords, failover timings.
ORCHESTRATED = (
    "unknown-top-key", "no-monitor", "duplicate-address", "too-many-sync-standbys", "trust",
    "half-a-certificate-set", "missing-password", "unsafe-timeouts",
)  # fmt: skip
ORCHESTRATED_CASES = [case for case in CASES if case[0] in ORCHESTRATED]
assert len(ORCHESTRATED_CASES) == len(ORCHESTRATED), "a name of ORCHESTRATED is not a case of bad_pillars"


@pytest.mark.parametrize(
    ("change", "named"),
    [case[1:] for case in ORCHESTRATED_CASES],
    ids=[case[0] for case in ORCHESTRATED_CASES],
)
def test_the_orchestration_refuses_a_bad_pillar_and_no_host_changes(bare, tmp_path, change, named):
    install(bare, tmp_path, broken(change))
    result = bare.salt_run("state.orchestrate", "pgfailover.orch", check=False)
    assert result.get("retcode") != 0
    assert named in json.dumps(result).replace('\\"', '"').replace("\\'", "'"), json.dumps(result)[:2000]
    assert nothing_changed(bare) == {}


@pytest.mark.parametrize("case", ["no-ssl-choice", "short-password", "unsafe-timeouts"])
def test_highstate_refuses_a_bad_pillar_on_every_host_and_changes_nothing(bare, tmp_path, case):
    _, change, named = next(c for c in CASES if c[0] == case)
    install(bare, tmp_path, broken(change))
    returns = bare.salt("*", "state.highstate", check=False)
    assert set(returns) == set(HOSTS)
    for host, errors in returns.items():
        assert isinstance(errors, list) and named in " ".join(errors), (host, errors)
    assert nothing_changed(bare) == {}


def failed_states(returns):
    """{minion: [state id: comment]} of every state whose result is False in state.apply returns."""
    failed = {}
    for minion, states in returns.items():
        if not isinstance(states, dict):  # a render error: a list of messages
            failed[minion] = [str(states)[:500]]
            continue
        bad = [
            f"{sid.split('_|-')[1]}: {s['comment'][:300]}"
            for sid, s in states.items()
            if s["result"] is False
        ]
        if bad:
            failed[minion] = bad
    return failed


def test_dry_runs_on_bare_hosts_fail_nothing_and_change_nothing(bare, tmp_path):
    """
    test=True on hosts not built yet, as a new user tries first: highstate on
    every host (its modules synced) and the orchestration report no failed
    state, and no host changes.
    """
    install(bare, tmp_path, good())
    bare.salt("*", "saltutil.sync_all")
    returns = bare.salt("*", "state.apply", "test=True", check=False)
    assert set(returns) == set(HOSTS)
    assert failed_states(returns) == {}
    predicted = [sid for states in returns.values() for sid, s in states.items() if s["result"] is None]
    assert any("node_present" in sid for sid in predicted), predicted  # it says what it would do
    result = bare.salt_run("state.orchestrate", "pgfailover.orch", "test=True", check=False)
    steps = result["data"][next(iter(result["data"]))]
    assert isinstance(steps, dict), steps
    assert [sid for sid, step in steps.items() if step["result"] is False] == [], json.dumps(result)[:3000]
    minion_returns = {
        minion: states
        for step in steps.values()
        for minion, states in (step.get("changes", {}).get("ret") or {}).items()
    }
    assert minion_returns and failed_states(minion_returns) == {}
    assert nothing_changed(bare) == {}
