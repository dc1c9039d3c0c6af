"""
Bad input on real, bare hosts: every bad pillar of helpers.bad_pillars is
refused by the orchestration (and a few by highstate) with a message naming
the pillar key, and nothing appeared on any host: no package, no file of the
formula, no unit, no data directory. Runs before test_orchestrate, which
needs the same hosts bare.
"""

import json
import os

import pytest
import yaml

from helpers.bad_pillars import CASES, broken

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


@pytest.mark.parametrize(("change", "named"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
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
