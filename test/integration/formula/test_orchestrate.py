"""
The formula on real hosts: orchestrate from bare hosts to a converged
cluster, a client through the formation URI with TLS and a password,
idempotent re-runs (highstate, test mode, orchestrate), and a reboot.
"""

import json
import os
import re
import time

import pytest
import yaml

from helpers.cluster import record
from helpers.cmdlines import CommandLines
from helpers.local_cluster import BINDIR
from helpers.tls import (
    install_host_files,
    make_ca,
    make_host_certificate,
    put,
    serial_of,
    served_serial,
    ssl_pillar,
)
from helpers.waiting import wait_until
from helpers.writer import Writer, client_uri
from lab.paths import MASTER, REPO
from lab.session import SaltError, orchestrate_changes, orchestrate_failures

PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")
HOSTS = ("mon", "pg1", "pg2", "pg3")
APP_PASSWORD = "lab-app-Zi8v"  # test/salt/pillar/lab_cluster.sls
with open(PILLAR) as _f:
    SECRETS = list(yaml.safe_load(_f)["pgfailover"]["passwords"].values())


def orchestrate(lab):
    result = lab.salt_run("state.orchestrate", "pgfailover.orch", check=False)
    assert result and result.get("retcode", 1) == 0, orchestrate_failures(result)
    return result


def psql(lab, host, uri, sql):
    """psql on a lab host as root, password from root's 0600 .pgpass (never on a command line)."""
    return lab.run(
        host, "psql", "--no-psqlrc", "-Atq", "-v", "ON_ERROR_STOP=1", uri, "-c", sql
    ).stdout.strip()


@pytest.fixture(scope="module")
def cluster(lab):
    lab.down()  # bare hosts whatever ran before (another module's clean keeps its data directories)
    lab.up(*HOSTS)
    for host in HOSTS:  # bare hosts: the formula installs PostgreSQL itself
        assert lab.run(host, "test", "-e", "/usr/bin/pg_autoctl", check=False).returncode == 1
    lab.pillar(PILLAR)
    started = time.monotonic()
    with CommandLines() as cmdlines:
        result = orchestrate(lab)
    print(f"orchestrate from bare hosts: {time.monotonic() - started:.1f} s")
    lab.run("mon", "sh", "-c", "umask 077; cat > /root/.pgpass", input=f"*:*:appdb:app:{APP_PASSWORD}\n")
    return {"result": result, "cmdlines": cmdlines}


def state_table(lab):
    return {n["nodename"]: n for n in lab.salt_call("mon", "pgfailover.state")["local"]}


def test_orchestrate_builds_a_converged_cluster(lab, cluster):
    nodes = state_table(lab)
    assert {name: n["current_group_state"] for name, n in nodes.items()} == {
        "pg1": "primary",
        "pg2": "secondary",
        "pg3": "secondary",
    }
    assert all(
        n["health"] == 1 and n["current_group_state"] == n["assigned_group_state"] for n in nodes.values()
    )
    assert lab.salt_call("mon", "pgfailover.number_sync_standbys")["local"] == 1


def test_no_password_on_a_command_line_in_a_log_the_job_cache_or_a_return(lab, cluster):
    """The lab pillar's passwords, searched for everywhere the orchestration could have put them."""
    cmdlines = cluster["cmdlines"]
    # The sampler saw the run: pg_autoctl's own commands on the hosts are there.
    assert cmdlines.containing(["pg_autoctl create postgres"]) and len(cmdlines.seen) > 100
    assert cmdlines.containing(SECRETS) == []
    assert not any(secret in json.dumps(cluster["result"]) for secret in SECRETS)
    master_files = [os.path.join(MASTER, "master.log")] + [
        os.path.join(root, name)
        for root, _, names in os.walk(os.path.join(MASTER, "cache", "jobs"))
        for name in names
    ]
    assert len(master_files) > 10
    for path in master_files:
        with open(path, "rb") as f:
            content = f.read()
        assert not any(secret.encode() in content for secret in SECRETS), path
    for host in HOSTS:
        assert lab.run(host, "test", "-s", "/var/log/salt/minion").returncode == 0
        for secret in SECRETS:
            found = lab.run(host, "grep", "-rlF", secret, "/var/log/salt", "/var/cache/salt", check=False)
            assert found.returncode == 1, (host, found.stdout)


def test_units_are_enabled_and_running(lab, cluster):
    assert lab.run("mon", "systemctl", "is-enabled", "pgautofailover-monitor").stdout.strip() == "enabled"
    for node in ("pg1", "pg2", "pg3"):
        unit = f"pgautofailover-node-{node}"
        assert lab.run(node, "systemctl", "is-active", unit).stdout.strip() == "active"
        assert lab.run(node, "systemctl", "is-enabled", unit).stdout.strip() == "enabled"


def test_client_writes_through_the_formation_uri_and_reads_from_a_secondary(lab, cluster):
    uri = lab.salt_call("mon", "pgfailover.uri")["local"]["formation"].replace(
        "postgres://", "postgres://app@"
    )
    assert "sslmode=require" in uri and "target_session_attrs=read-write" in uri
    psql(lab, "mon", uri, "CREATE TABLE IF NOT EXISTS demo (id int primary key, note text)")
    psql(
        lab,
        "mon",
        uri,
        "INSERT INTO demo VALUES (1, 'written through the formation URI') ON CONFLICT DO NOTHING",
    )
    assert psql(lab, "mon", uri, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "t"
    secondary = "postgres://app@pg2:5432/appdb?sslmode=require"
    wait_until(lambda: psql(lab, "mon", secondary, "SELECT count(*) FROM demo") == "1", 20, "the row on pg2")
    assert (
        psql(lab, "mon", secondary, "SELECT note FROM demo WHERE id = 1")
        == "written through the formation URI"
    )
    assert psql(lab, "mon", secondary, "SELECT pg_is_in_recovery()") == "t"


def test_a_wrong_password_is_refused(lab, cluster):
    lab.run(
        "mon", "sh", "-c", "umask 077; cat > /root/.pgpass.wrong", input="*:*:appdb:app:not-the-password\n"
    )
    result = lab.run(
        "mon", "env", "PGPASSFILE=/root/.pgpass.wrong", "psql", "-Atq",
        "postgres://app@pg1:5432/appdb?sslmode=require", "-c", "SELECT 1", check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "password authentication failed" in result.stderr


def test_no_password_no_tls_or_a_server_from_another_ca_are_refused(lab, cluster):
    app = "postgres://app@pg1:5432/appdb"

    def connect(uri, *env):
        return lab.run("mon", "env", *env, "psql", "-w", "-Atq", uri, "-c", "SELECT 1", check=False)

    assert connect(f"{app}?sslmode=require").stdout.strip() == "1"  # the right password, over TLS
    no_password = connect(f"{app}?sslmode=require", "PGPASSFILE=/nonexistent")
    assert no_password.returncode != 0 and "no password supplied" in no_password.stderr
    no_tls = connect(f"{app}?sslmode=disable")
    assert no_tls.returncode != 0 and "no encryption" in no_tls.stderr
    lab.run(
        "mon", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=other-ca", "-keyout", "/root/other-ca.key", "-out", "/root/other-ca.crt",
    )  # fmt: skip
    other_ca = connect(f"{app}?sslmode=verify-full&sslrootcert=/root/other-ca.crt")
    assert other_ca.returncode != 0 and "certificate verify failed" in other_ca.stderr


def test_no_trust_left_for_local_or_loopback_connections(lab, cluster):
    """initdb's trust lines are hardened: root cannot be the superuser by socket or by 127.0.0.1."""
    for host, port in (("pg1", 5432), ("pg2", 5432), ("mon", 5431)):
        by_socket = lab.run(host, "psql", "-p", str(port), "-U", "postgres", "-Atc", "SELECT 1", check=False)
        assert by_socket.returncode != 0 and "Peer authentication failed" in by_socket.stderr
        loopback = lab.run(
            host, "env", "PGPASSFILE=/nonexistent", "psql", "-w", "-h", "127.0.0.1", "-p", str(port),
            "-U", "postgres", "-Atc", "SELECT 1", check=False,
        )  # fmt: skip
        assert loopback.returncode != 0 and "password" in loopback.stderr


def test_orchestrate_again_changes_nothing(lab, cluster):
    started = time.monotonic()
    result = orchestrate(lab)
    print(f"idempotent orchestrate: {time.monotonic() - started:.1f} s")
    assert orchestrate_changes(result) == []


def test_highstate_and_its_prediction_report_no_changes(lab, cluster):
    for test_mode in ("True", "False"):
        returns = lab.salt("*", "state.highstate", f"test={test_mode}")
        assert set(returns) == set(HOSTS)
        for minion, states in returns.items():
            assert isinstance(states, dict), f"{minion}: {states}"
            changed = {sid: s["changes"] for sid, s in states.items() if s.get("changes")}
            failed = {sid: s["comment"] for sid, s in states.items() if s.get("result") is False}
            assert (changed, failed) == ({}, {}), minion


def test_ssl_moves_online_from_self_signed_to_an_own_ca_while_writes_go_on(lab, cluster, tmp_path):
    """
    The pillar's ssl changed to mode ca once each host has its files: one
    pgfailover.orch.ssl and no restart; every instance then serves its
    CA-signed certificate, the keepers and replication verify (verify-full),
    the writer loses no acknowledged row, and a re-run changes nothing.
    """
    make_ca(str(tmp_path), "lab-ca")
    for host in HOSTS:
        make_host_certificate(str(tmp_path), "lab-ca", host, lab.address(host))
        with open(tmp_path / "lab-ca.crt") as f:
            put(lab, host, ssl_pillar()["ca_file"], f.read())
        install_host_files(lab, str(tmp_path), host, host)
    with open(PILLAR) as f:
        data = yaml.safe_load(f)
    data["pgfailover"]["ssl"] = ssl_pillar()
    pillar = tmp_path / "lab_cluster.sls"
    pillar.write_text(yaml.safe_dump(data))
    uri = client_uri(lab.salt_call("mon", "pgfailover.uri")["local"]["formation"], lab.address, "app")
    assert "sslmode=require" in uri
    with Writer(uri, APP_PASSWORD, table="writes_ssl_to_ca") as writer:
        since = time.monotonic()
        lab.pillar(str(pillar))
        result = lab.salt_run("state.orchestrate", "pgfailover.orch.ssl", check=False)
        assert result and result.get("retcode", 1) == 0, orchestrate_failures(result)
        writer.wait_for_commits(20)
    record("ssl change to an own CA", writer, since)
    for host in HOSTS:
        port = 5431 if host == "mon" else 5432
        assert served_serial(lab.address(host), port) == serial_of(str(tmp_path), host), host
    for node in ("pg1", "pg2", "pg3"):
        config = lab.salt_call(node, "pgfailover.config_get")["local"]
        assert config["ssl"]["sslmode"] == "verify-full", config["ssl"]
        assert "sslmode=verify-full" in config["pg_autoctl"]["monitor"]
    nodes = state_table(lab)
    for name in (n for n, node in nodes.items() if node["current_group_state"] == "secondary"):
        conninfo = lab.run(
            name, "runuser", "-u", "postgres", "--", f"{BINDIR}/psql", "-XAt", "-d", "postgres",
            "-c", "SELECT conninfo FROM pg_stat_wal_receiver",
        ).stdout  # fmt: skip
        assert "sslmode=verify-full" in conninfo, (name, conninfo)
    again = lab.salt_run("state.orchestrate", "pgfailover.orch.ssl", check=False)
    assert again and again.get("retcode", 1) == 0, orchestrate_failures(again)
    assert orchestrate_changes(again) == []


def test_a_rebooted_secondary_comes_back_by_itself(lab, cluster):
    lab.stop("pg3")
    lab.start("pg3")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            node = state_table(lab)["pg3"]
        except SaltError:
            node = {}
        if node.get("current_group_state") == "secondary" and node.get("health") == 1:
            break
        time.sleep(1)
    assert node["current_group_state"] == node["assigned_group_state"] == "secondary"


def test_clean_orchestration_uninstalls_and_keeps_the_data(lab, cluster):
    """Last in this module: it removes the cluster (data stays without clean:remove_data)."""
    result = lab.salt_run("state.orchestrate", "pgfailover.orch.clean", check=False)
    assert result and result.get("retcode", 1) == 0, orchestrate_failures(result)
    for host, unit, pgdata in [
        *((n, f"pgautofailover-node-{n}", f"/var/lib/postgresql/pgaf/{n}") for n in ("pg1", "pg2", "pg3")),
        ("mon", "pgautofailover-monitor", "/var/lib/postgresql/pgaf/monitor"),
    ]:
        active = lab.run(host, "systemctl", "is-active", unit, check=False).stdout.strip()
        assert active != "active", (
            host,
            orchestrate_changes(result),
            lab.run(host, "journalctl", "-n", "30", "--no-pager", check=False).stdout,
        )
        assert lab.run(host, "test", "-e", f"/etc/systemd/system/{unit}.service", check=False).returncode == 1
        assert lab.run(host, "test", "-e", "/usr/bin/pg_autoctl", check=False).returncode == 1, (
            "packages removed"
        )
        assert lab.run(host, "test", "-e", "/usr/local/lib/pgfailover", check=False).returncode == 1, (
            "the units' pidfile guard and its directory removed"
        )
        assert lab.run(host, "test", "-f", f"{pgdata}/PG_VERSION", check=False).returncode == 0, "data kept"


def test_clean_orchestration_run_again_changes_nothing(lab, cluster):
    """After the clean: no monitor answers and pg_autoctl is gone; every host is cleaned once, unchanged."""
    result = lab.salt_run("state.orchestrate", "pgfailover.orch.clean", check=False)
    assert result and result.get("retcode", 1) == 0, orchestrate_failures(result)
    assert orchestrate_changes(result) == []
    comments = [step["comment"] for steps in result["data"].values() for step in steps.values()]
    for host in ("pg1", "pg2", "pg3"):  # each node's host in one step: "... No changes made to pg1."
        assert sum(host in re.findall(r"\w+", comment) for comment in comments) == 1, (host, comments)
