"""
Your own CA, end to end on real hosts: certificates made here with openssl
(a CA, and per host a certificate with its name and address), put on the
hosts as an operator would after the packages, and a cluster built with
``ssl: {mode: ca}``. pg_autoctl's own connections (to the monitor,
replication) verify the servers (sslmode verify-full, the CA as the service
user's root certificate); a client with the CA connects, one with another
CA or asking for another host name is refused; a re-run changes nothing.
"""

import os
import time

import psycopg
import pytest

from helpers.bad_pillars import good
from helpers.cluster import APP_PASSWORD, DBNAME, Cluster, record
from helpers.local_cluster import BINDIR
from helpers.tls import (
    TLS_DIR,
    install_host_files,
    make_ca,
    make_host_certificate,
    put,
    serial_of,
    served_serial,
    ssl_pillar,
)
from helpers.waiting import wait_until
from lab.session import orchestrate_changes, orchestrate_failures

HOSTS = ("mon", "pg1", "pg2")
PROXY_HOST, READ_WRITE = "mon", 5000  # HAProxy on the monitor's host
HAPROXY = {"minions": [PROXY_HOST]}


def proxied(lab, host):
    """The name and address clients use through HAProxy, for a node's certificate."""
    return () if host == PROXY_HOST else ((PROXY_HOST, lab.address(PROXY_HOST)),)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tls"))
    make_ca(directory, "lab-ca")
    make_ca(directory, "other-ca")
    return directory


@pytest.fixture(scope="module")
def cluster(lab, tls, tmp_path_factory):
    lab.down()
    lab.up(*HOSTS)
    cluster = Cluster(lab, str(tmp_path_factory.mktemp("pillar")))
    cluster.nodes = ["pg1", "pg2"]
    cluster.install_pillar(ssl=ssl_pillar(), number_sync_standbys=0, haproxy=HAPROXY)
    # As an operator would: the packages first (the key must belong to the postgres user), then the files.
    lab.salt("*", "saltutil.sync_all")
    lab.salt("*", "state.apply", "pgfailover.package")
    for host in HOSTS:
        make_host_certificate(tls, "lab-ca", host, lab.address(host), also=proxied(lab, host))
        for name, source in (("ca.crt", "lab-ca.crt"), ("other-ca.crt", "other-ca.crt")):
            with open(os.path.join(tls, source)) as f:
                put(lab, host, f"{TLS_DIR}/{name}", f.read())
        install_host_files(lab, tls, host, host)
    return cluster


def test_a_ca_that_did_not_issue_the_certificates_is_refused_before_any_instance(lab, cluster):
    cluster.install_pillar(ssl=ssl_pillar("other-ca.crt"), number_sync_standbys=0, haproxy=HAPROXY)
    try:
        result = cluster.orchestrate("pgfailover.orch")
    finally:
        cluster.install_pillar(ssl=ssl_pillar(), number_sync_standbys=0, haproxy=HAPROXY)
    assert result.get("retcode") != 0
    failures = orchestrate_failures(result)
    refusal = f"pillar key ssl:ca_file: {TLS_DIR}/other-ca.crt did not issue {TLS_DIR}/server.crt"
    assert "Certificate files on mon refused" in failures and refusal in failures, failures
    for host in HOSTS:
        created = lab.run(host, "sh", "-c", "ls -A /var/lib/postgresql/pgaf 2>/dev/null || true").stdout
        assert created.split() == [], (host, created)


def test_orchestrate_builds_a_verify_full_cluster_and_a_rerun_changes_nothing(lab, cluster):
    cluster.orchestrate_ok("pgfailover.orch")
    cluster.converged()
    assert orchestrate_changes(cluster.orchestrate_ok("pgfailover.orch")) == []


def test_pg_autoctl_verifies_the_monitor_and_the_primary(lab, cluster):
    for node in cluster.nodes:
        config = lab.salt(node, "pgfailover.config_get")[node]
        assert config["ssl"]["sslmode"] == "verify-full", config["ssl"]
        assert "sslmode=verify-full" in config["pg_autoctl"]["monitor"]
    secondary = next(n for n in cluster.nodes if n != cluster.primary())
    conninfo = lab.run(
        secondary, "runuser", "-u", "postgres", "--", f"{BINDIR}/psql", "-XAt", "-d", "postgres",
        "-c", "SELECT conninfo FROM pg_stat_wal_receiver",
    ).stdout  # fmt: skip
    assert "sslmode=verify-full" in conninfo, conninfo


def connect(lab, tls, host, ca, address_of=None, password=APP_PASSWORD, port=5432):
    conninfo = (
        f"host={host} hostaddr={lab.address(address_of or host)} port={port} dbname={DBNAME} user=app "
        f"sslmode=verify-full sslrootcert={os.path.join(tls, ca)} connect_timeout=10"
    )
    return psycopg.connect(conninfo, password=password, autocommit=True)


def test_a_client_with_the_ca_connects_and_others_are_refused(lab, cluster, tls):
    primary = cluster.primary()
    with connect(lab, tls, primary, "lab-ca.crt") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(lab, tls, primary, "other-ca.crt")
    other = next(n for n in cluster.nodes if n != primary)
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        connect(lab, tls, other, "lab-ca.crt", address_of=primary)


def test_through_haproxy_a_client_verifies_the_name_it_connects_to(lab, cluster, tls):
    """HAProxy passes TLS through: the primary's certificate must name HAProxy's host, as the docs say."""
    with connect(lab, tls, PROXY_HOST, "lab-ca.crt", port=READ_WRITE) as conn:
        assert conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(lab, tls, PROXY_HOST, "other-ca.crt", port=READ_WRITE)


def verify_full_writer(cluster, tls, scenario):
    """The cluster's writer through the formation URI, verifying servers against the lab CA from here."""
    writer = cluster.writer(scenario)
    scheme, rest = writer.conninfo.split("?", 1)
    query = [part for part in rest.split("&") if not part.startswith(("sslmode=", "sslrootcert="))]
    query += ["sslmode=verify-full", f"sslrootcert={os.path.join(tls, 'lab-ca.crt')}"]
    writer.conninfo = f"{scheme}?{'&'.join(query)}"
    return writer


def test_renewed_certificates_are_served_after_the_renewal_orchestration(lab, cluster, tls):
    """New files in place, one orchestration: every instance presents its new certificate; writes go on."""
    ports = {"mon": 5431, "pg1": 5432, "pg2": 5432}
    before = {host: served_serial(lab.address(host), port) for host, port in ports.items()}
    assert before == {host: serial_of(tls, host) for host in HOSTS}
    with verify_full_writer(cluster, tls, "renewal") as writer:
        since = time.monotonic()
        for host in HOSTS:
            make_host_certificate(
                tls, "lab-ca", host, lab.address(host), name=f"{host}-renewed", also=proxied(lab, host)
            )
            install_host_files(lab, tls, host, f"{host}-renewed")
        cluster.orchestrate_ok("pgfailover.orch.renew_certificates")
        writer.wait_for_commits(20)
    record("certificate renewal", writer, since, cluster)
    after = {host: served_serial(lab.address(host), port) for host, port in ports.items()}
    assert after == {host: serial_of(tls, f"{host}-renewed") for host in HOSTS}
    cluster.converged()


ROTATED = {
    "autoctl_node": "rotated-autoctl-Nb4q",
    "replicator": "rotated-replicator-Vx2k",
    "monitor": "rotated-monitor-Hq8s",
    "app": "rotated-app-Mz5t",
}


def monitor_login(lab, node, password):
    """Whether autoctl_node logs in to the monitor from ``node`` with ``password`` (given on stdin)."""
    command = (
        'PGPASSWORD="$(cat)" psql -XAt -c "SELECT 1" '
        '"host=mon port=5431 dbname=pg_auto_failover user=autoctl_node sslmode=verify-full"'
    )
    result = lab.run(
        node, "runuser", "-u", "postgres", "--", "sh", "-c", command, input=password, check=False
    )
    return result.returncode == 0


def streaming_standbys(lab, primary):
    query = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    psql = ["runuser", "-u", "postgres", "--", f"{BINDIR}/psql", "-XAt", "-d", "postgres", "-c"]
    return int(lab.run(primary, *psql, query).stdout)


def test_rotated_passwords_take_effect_in_order_while_writes_go_on(lab, cluster, tls):
    """
    New passwords in the pillar, one orchestration: the old ones are refused, the
    new ones work for the application, the keepers (autoctl_node), replication
    (a reconnection) and the monitor's health checks; the writer loses nothing.
    """
    old_autoctl = good()["passwords"]["autoctl_node"]
    with verify_full_writer(cluster, tls, "rotation") as writer:
        since = time.monotonic()
        cluster.install_pillar(ssl=ssl_pillar(), number_sync_standbys=0, haproxy=HAPROXY, passwords=ROTATED)
        cluster.orchestrate_ok("pgfailover.orch.rotate_passwords")
        writer.wait_for_commits(20)
    writer.password = ROTATED["app"]  # as the application would, for the read-back
    record("password rotation", writer, since, cluster)
    primary = cluster.primary()
    with connect(lab, tls, primary, "lab-ca.crt", password=ROTATED["app"]) as conn:
        assert conn.execute("SELECT current_user = 'app'").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(lab, tls, primary, "lab-ca.crt")
    standby = next(n for n in cluster.nodes if n != primary)
    assert monitor_login(lab, standby, ROTATED["autoctl_node"]) and not monitor_login(
        lab, standby, old_autoctl
    )
    # Replication reconnects with the new password.
    psql = ["runuser", "-u", "postgres", "--", f"{BINDIR}/psql", "-XAt", "-d", "postgres", "-c"]
    lab.run(primary, *psql, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
    wait_until(lambda: streaming_standbys(lab, primary) >= 1, 60, "a standby streams with the new password")
    table = cluster.converged()
    assert {name: node["health"] for name, node in table.items()} == {name: 1 for name in cluster.nodes}


@pytest.mark.parametrize(
    ("ssl", "named"),
    [
        ({"mode": "none"}, "pillar key pgfailover:ssl:mode is none but the formation uses SSL"),
        ({"mode": "self-signed"}, "pillar key pgfailover:ssl:mode is self-signed but the formation verifies"),
    ],
    ids=["none", "self-signed"],
)
def test_what_ssl_cannot_change_online_is_refused_naming_the_pillar_key_before_any_change(
    lab, cluster, ssl, named
):
    """From a CA, neither SSL off nor self-signed certificates: orch.ssl refuses, nothing changes."""
    cluster.install_pillar(ssl=ssl, number_sync_standbys=0, haproxy=HAPROXY, passwords=ROTATED)
    try:
        result = cluster.orchestrate("pgfailover.orch.ssl")
    finally:
        cluster.install_pillar(ssl=ssl_pillar(), number_sync_standbys=0, haproxy=HAPROXY, passwords=ROTATED)
    assert result.get("retcode") != 0
    assert named in orchestrate_failures(result)
    for node in cluster.nodes:
        config = lab.salt(node, "pgfailover.config_get")[node]
        assert config["ssl"]["sslmode"] == "verify-full" and config["ssl"]["ca_file"], config["ssl"]
