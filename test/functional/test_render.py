"""
Rendering checks for what the lab cannot boot: the formula compiled by a
real `salt-call --local` with grains overridden (RedHat: PGDG and the vendor
RPM; Debian), and every kitchen.yml suite's SLS and pillar files.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from lab.paths import REPO

HERE = os.path.dirname(os.path.abspath(__file__))
SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")
CLUSTER = {
    "monitor": {"minion": "mon", "port": 5431},
    "nodes": [{"name": "pg1"}, {"name": "pg2"}],
    "dbname": "appdb",
    "app": {"owner": "app", "cidrs": ["10.0.0.0/24"]},
    "ssl": {"mode": "self-signed"},
    "passwords": {"autoctl_node": "a" * 12, "replicator": "r" * 12, "monitor": "m" * 12, "app": "p" * 12},
}


def formula_roots(tmp_path):
    """
    A file root holding the formula (and the templates these tests render
    through it) only, as the lab's master serves it: with
    the whole repository as its root, Salt's file server walked the venv and
    the tests on every call (4.3 s instead of 2.0 s a render here).
    """
    roots = tmp_path / "roots"
    if not roots.exists():
        roots.mkdir()
        (roots / "pgfailover").symlink_to(os.path.join(REPO, "pgfailover"))
        (roots / "test" / "functional").mkdir(parents=True)
        (roots / "test" / "functional" / "templates").symlink_to(os.path.join(HERE, "templates"))
    return str(roots)


def show_sls(tmp_path, minion_id, pillar, grains, sls="pgfailover", expect_error=False):
    """
    state.show_sls compiled by salt-call --local with these grains and pillar;
    with ``expect_error``, the render error's text instead.
    """
    pillar_dir = tmp_path / "pillar"
    pillar_dir.mkdir(exist_ok=True)
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - cluster\n")
    (pillar_dir / "cluster.sls").write_text(yaml.safe_dump(pillar))
    config = {
        "id": minion_id,
        "file_client": "local",
        "file_roots": {"base": [formula_roots(tmp_path)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
        "module_dirs": [os.path.join(REPO, "_modules")],
        "states_dirs": [os.path.join(REPO, "_states")],
        "root_dir": str(tmp_path),
        "cachedir": str(tmp_path / "cache"),
        "pki_dir": str(tmp_path / "pki"),
        "log_file": str(tmp_path / "minion.log"),
        "grains": grains,
    }
    (tmp_path / "minion").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [SALT_CALL, "--local", "-c", str(tmp_path), "--out=json", "state.show_sls", sls],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if expect_error:
        assert result.returncode != 0, result.stdout
        return result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)["local"]


def render_template(tmp_path, template, context):
    """A formula template rendered by the salt-call of show_sls (same configuration)."""
    result = subprocess.run(
        [SALT_CALL, "--local", "-c", str(tmp_path), "--out=json", "slsutil.renderer",
         "salt://" + template, "default_renderer=jinja", f"context={json.dumps(context)}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)["local"]


def args_of(high, state_id):
    """The argument dict of a state in show_sls output."""
    state = high[state_id]
    function = next(k for k in state if not k.startswith("__"))
    return {key: value for item in state[function] if isinstance(item, dict) for key, value in item.items()}


REDHAT = {"os_family": "RedHat", "os": "Rocky", "osfinger": "Rocky Linux-9"}


def test_redhat_pgdg_renders_pgdg_packages_paths_and_units(tmp_path):
    pillar = {"pgfailover": {**CLUSTER, "repo": {"kind": "url", "url": "https://mirror.invalid/pgdg/15"}}}
    high = show_sls(tmp_path, "pg1", pillar, REDHAT)
    assert args_of(high, "pgfailover-package-install-packages")["pkgs"] == [
        "postgresql15-server", "postgresql15-contrib", "pg_auto_failover_15",
    ]  # fmt: skip
    assert args_of(high, "pgfailover-package-source-yum")["baseurl"] == "https://mirror.invalid/pgdg/15"
    node = args_of(high, "pgfailover-node-init-pg1-present")
    assert node["bindir"] == "/usr/pgsql-15/bin" and node["home"] == "/var/lib/pgsql"
    assert node["pgdata"] == "/var/lib/pgsql/pgaf/pg1"
    assert args_of(high, "pgfailover-node-init-pg1-service")["name"] == "pgautofailover-node-pg1"
    assert (
        "postgresql-15.service"
        in args_of(high, "pgfailover-package-install-distribution-unit-postgresql-15.service-off")["name"]
    )
    assert "pgfailover-package-source-no-main-cluster" not in high


def test_redhat_vendor_rpm_renders_the_rpm_file_install(tmp_path):
    pillar = {"pgfailover": {**CLUSTER, "repo": {"kind": "rpm_file"}, "postgresql_version": 13}}
    high = show_sls(tmp_path, "mon", pillar, REDHAT)
    rpm = args_of(high, "pgfailover-package-install-rpm-file")
    assert rpm["source"] == "salt://pgfailover/files/vendor/vmware-postgres-13.3-0.el7.x86_64.rpm"
    sources = args_of(high, "pgfailover-package-install-packages")["sources"]
    assert sources == [{"vmware-postgres": "/var/cache/pgfailover/vmware-postgres-13.3-0.el7.x86_64.rpm"}]
    monitor = args_of(high, "pgfailover-monitor-init-present")
    assert monitor["bindir"] == "/opt/vmware/postgres/13/bin"
    assert monitor["pg_autoctl"] == "/opt/vmware/postgres/13/bin/pg_autoctl"


def test_debian_renders_no_main_cluster_before_packages(tmp_path):
    pillar = {"pgfailover": CLUSTER}
    high = show_sls(tmp_path, "pg2", pillar, {"os_family": "Debian", "os": "Debian"})
    packages = args_of(high, "pgfailover-package-install-packages")
    assert packages["pkgs"] == [
        "postgresql-15", "postgresql-client-15", "postgresql-15-auto-failover", "pg-auto-failover-cli",
    ]  # fmt: skip
    assert {"sls": "pgfailover.package.source"} in packages["require"]
    assert "pgfailover-package-source-no-main-cluster" in high
    assert "pgfailover-node-init-pg2-present" in high and "pgfailover-monitor-init-present" not in high


def test_debian_apt_source_is_one_pkgrepo_line_in_its_own_file(tmp_path):
    repo = {
        "kind": "url",
        "url": "file:/srv/repo",
        "suite": "bookworm",
        "components": ["main"],
        "trusted": True,
    }
    high = show_sls(
        tmp_path, "pg2", {"pgfailover": {**CLUSTER, "repo": repo}}, {"os_family": "Debian", "os": "Debian"}
    )
    source = args_of(high, "pgfailover-package-source-apt")
    assert source["name"] == "deb [trusted=yes] file:/srv/repo bookworm main"
    assert source["file"] == "/etc/apt/sources.list.d/pgfailover.list"
    assert source["clean_file"] is True and source["refresh"] is True and source["trusted"] is True
    flat = {"kind": "url", "url": "file:/srv/flat"}
    high = show_sls(
        tmp_path, "pg2", {"pgfailover": {**CLUSTER, "repo": flat}}, {"os_family": "Debian", "os": "Debian"}
    )
    source = args_of(high, "pgfailover-package-source-apt")
    assert source["name"] == "deb file:/srv/flat ./" and "trusted" not in source


def test_secrets_stay_out_of_compiled_states(tmp_path):
    high = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, {"os_family": "Debian", "os": "Debian"})
    assert "a" * 12 not in json.dumps(high) and "p" * 12 not in json.dumps(high)


def test_clean_removes_data_only_when_the_pillar_says_so(tmp_path):
    grains = {"os_family": "Debian", "os": "Debian"}
    kept = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, grains, sls="pgfailover.clean")
    assert "pgfailover-node-clean-pg1-dropped" in kept
    assert args_of(kept, "pgfailover-node-clean-pg1-dropped")["destroy"] is False
    assert "pgfailover-node-clean-pg1-data" not in kept
    asked = {"pgfailover": {**CLUSTER, "clean": {"remove_data": True}}}
    removed = show_sls(tmp_path, "pg1", asked, grains, sls="pgfailover.clean")
    assert args_of(removed, "pgfailover-node-clean-pg1-dropped")["destroy"] is True
    assert args_of(removed, "pgfailover-node-clean-pg1-data")["name"] == "/var/lib/postgresql/pgaf/pg1"
    as_text = {"pgfailover": {**CLUSTER, "clean": {"remove_data": "yes"}}}
    refused = show_sls(tmp_path, "pg1", as_text, grains, sls="pgfailover.clean", expect_error=True)
    assert "pillar key pgfailover:clean:remove_data is 'yes'; allowed: true or false" in refused


def kitchen_suites():
    with open(os.path.join(REPO, "kitchen.yml")) as f:
        kitchen = yaml.safe_load(f)
    return kitchen, kitchen["suites"]


@pytest.mark.parametrize("suite", [s["name"] for s in kitchen_suites()[1]])
def test_kitchen_suite_files_exist_and_render(tmp_path, suite):
    kitchen, suites = kitchen_suites()
    provisioner = {**kitchen["provisioner"], **next(s for s in suites if s["name"] == suite)["provisioner"]}
    for sls in provisioner["state_top"]["base"]["*"]:
        assert os.path.exists(os.path.join(REPO, *sls.split("."), "init.sls"))
    for pillar_file in provisioner["pillars_from_files"].values():
        path = os.path.join(REPO, pillar_file)
        assert os.path.exists(path), pillar_file
        with open(path) as f:
            pillar = yaml.safe_load(f)
    platform = kitchen["platforms"][0]["name"]
    high = show_sls(tmp_path, f"{suite}-{platform}", pillar, {"os_family": "Debian", "os": "Debian"})
    assert "pgfailover-monitor-init-present" in high
    assert {"pgfailover-node-init-node1-present", "pgfailover-node-init-node2-present"} <= set(high)


DEBIAN = {"os_family": "Debian", "os": "Debian", "osfinger": "Debian-12"}


def test_the_fast_profile_sets_monitor_keepers_and_wal_sender_timeout_together(tmp_path):
    pillar = {
        "pgfailover": {**CLUSTER, "monitor": {"minion": "pg1", "port": 5431}, "failover": {"profile": "fast"}}
    }
    high = show_sls(tmp_path, "pg1", pillar, DEBIAN, sls="pgfailover.node")
    assert args_of(high, "pgfailover-node-init-pg1-network-partition-timeout")["value"] == 1
    settings_file = args_of(high, "pgfailover-node-init-pg1-settings")["context"]["settings"]
    assert settings_file["wal_sender_timeout"] == "1500ms"
    formation = show_sls(tmp_path, "pg1", pillar, DEBIAN, sls="pgfailover.formation")
    settings = args_of(formation, "pgfailover-formation-init-failover-profile")["settings"]
    assert settings["primary_demote_timeout"] == 3500 and settings["health_check_period"] == 1000
    monitor = show_sls(tmp_path, "pg1", pillar, DEBIAN, sls="pgfailover.monitor")
    first = args_of(monitor, "pgfailover-monitor-init-demote-timeout-raised-first")
    assert first["increase_only"] is True and first["settings"] == {"primary_demote_timeout": 3500}


@pytest.mark.parametrize(
    ("failover", "settings", "named"),
    [
        ({"profile": "quick"}, {}, "pgfailover:failover:profile is 'quick'; allowed: default, fast"),
        (
            {"monitor": {"health_check_perod": 1000}},
            {},
            "health_check_perod is unknown; did you mean health_check_period?",
        ),
        (
            {"monitor": {"primary_demote_timeout": "soon"}},
            {},
            "pgfailover:failover:monitor:primary_demote_timeout",
        ),
        ({"network_partition_timeout": 0}, {}, "pgfailover:failover:network_partition_timeout is 0"),
        ({"profile": "fast", "network_partition_timeout": 20}, {}, "two nodes could be writable at once"),
        ({"monitor": {"primary_demote_timeout": 20000}}, {}, "primary_demote_timeout (20000 ms"),
        ({}, {"wal_sender_timeout": "30s"}, "wal_sender_timeout (30000 ms"),
        ({}, {"wal_sender_timeout": "soon"}, "pgfailover:postgresql:settings:wal_sender_timeout is 'soon'"),
    ],
)
def test_failover_timings_that_could_leave_two_writable_nodes_are_refused(
    tmp_path, failover, settings, named
):
    pillar = {"pgfailover": {**CLUSTER, "failover": failover, "postgresql": {"settings": settings}}}
    assert named in show_sls(tmp_path, "pg1", pillar, DEBIAN, expect_error=True)


HAPROXY_CLUSTER = {**CLUSTER, "haproxy": {"minions": ["app1"], "read_write_port": 6432}}


def test_haproxy_hosts_get_haproxy_only_and_nodes_get_health_endpoints(tmp_path):
    pillar = {"pgfailover": HAPROXY_CLUSTER}
    proxy = show_sls(tmp_path, "app1", pillar, DEBIAN)
    assert "pgfailover-haproxy-init-config" in proxy
    assert "pgfailover-package-install-packages" not in proxy  # no PostgreSQL on a proxy-only host
    # ...but the pillar's package source: a site's hosts may see no other (the chaos lab's proxy host).
    assert {"sls": "pgfailover.package.source"} in args_of(proxy, "pgfailover-haproxy-init-package")[
        "require"
    ]
    assert "pgfailover-package-source-no-main-cluster" in proxy
    cleaned = show_sls(tmp_path, "app1", pillar, DEBIAN, sls="pgfailover.haproxy.clean")
    assert "pgfailover-package-source-clean-files" in cleaned
    on_a_node = {"pgfailover": {**HAPROXY_CLUSTER, "haproxy": {"minions": ["pg1"], "read_write_port": 6432}}}
    shared = show_sls(tmp_path, "pg1", on_a_node, DEBIAN, sls="pgfailover.haproxy.clean")
    assert "pgfailover-haproxy-clean-service" in shared
    assert "pgfailover-package-source-clean-files" not in shared  # package.clean's business there
    context = args_of(proxy, "pgfailover-haproxy-init-config")["context"]
    assert context["haproxy"]["read_write_port"] == 6432 and context["haproxy"]["read_only_port"] == 5001
    assert [(f["name"], f["read_write_port"], f["read_only_port"]) for f in context["formations"]] == [
        ("default", 6432, 5001)
    ]
    assert [(n["name"], n["health_port"]) for n in context["formations"][0]["nodes"]] == [
        ("pg1", 8008),
        ("pg2", 8008),
    ]
    node = show_sls(tmp_path, "pg1", pillar, DEBIAN)
    config = args_of(node, "pgfailover-health-init-pg1-config")["dataset"]
    assert (
        config["state_file"]
        == "/var/lib/postgresql/.local/share/pg_autoctl/var/lib/postgresql/pgaf/pg1/pg_autoctl.state"
    )
    assert args_of(node, "pgfailover-health-init-pg1-service")["name"] == "pgfailover-health-pg1"
    assert "pgfailover-haproxy-init-config" not in node
    # /primary fails on a cut-off primary network_partition_timeout + 2 s after its last word from the monitor
    assert config["isolation_timeout"] == 22
    without = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, DEBIAN)
    assert "pgfailover-health-init-pg1-service" not in without  # no HAProxy, no extra listening port


def test_haproxy_gives_each_formation_its_own_ports_and_each_node_its_health_endpoint(tmp_path):
    billing = {
        "dbname": "billing",
        "nodes": [{"name": "pgb1", "minion": "pg1", "port": 5433, "health_port": 8009}],
        "haproxy": {"read_write_port": 5100, "read_only_port": 5101},
    }
    pillar = {"pgfailover": {**HAPROXY_CLUSTER, "formations": {"billing": billing}}}
    proxy = show_sls(tmp_path, "app1", pillar, DEBIAN)
    context = args_of(proxy, "pgfailover-haproxy-init-config")["context"]
    config = render_template(tmp_path, "pgfailover/files/haproxy.cfg.jinja", context)
    sections = {}
    for block in config.split("\nlisten ")[1:]:
        lines = block.splitlines()
        sections[lines[0]] = [
            line.strip() for line in lines[1:] if line.strip().startswith(("bind", "server"))
        ]
    assert sections["pgfailover-default-read-write"] == [
        "bind 0.0.0.0:6432",
        "server pg1 pg1:5432 check port 8008",
        "server pg2 pg2:5432 check port 8008",
    ]
    assert sections["pgfailover-billing-read-write"] == [
        "bind 0.0.0.0:5100",
        "server pgb1 pg1:5433 check port 8009",
    ]
    assert sections["pgfailover-billing-read-only"] == [
        "bind 0.0.0.0:5101",
        "server pgb1 pg1:5433 check port 8009",
        "server pgb1-as-primary pg1:5433 backup track pgfailover-billing-read-write/pgb1",
    ]
    node = show_sls(tmp_path, "pg1", pillar, DEBIAN)
    assert args_of(node, "pgfailover-health-init-pgb1-config")["dataset"]["port"] == 8009
    assert args_of(node, "pgfailover-health-init-pg1-config")["dataset"]["port"] == 8008


@pytest.mark.parametrize(
    ("change", "isolation_timeout"),
    [
        ({"failover": {"profile": "fast"}}, 3),
        ({"failover": {"network_partition_timeout": 10}}, 12),
        ({"health": {"isolation_timeout": 7}}, 7),
        ({"nodes": [{"name": "pg1"}]}, 0),  # nobody can take over from a single node: never cut off
    ],
)
def test_the_cut_off_limit_of_the_health_endpoint_follows_the_partition_timeout(
    tmp_path, change, isolation_timeout
):
    node = show_sls(tmp_path, "pg1", {"pgfailover": {**HAPROXY_CLUSTER, **change}}, DEBIAN)
    assert (
        args_of(node, "pgfailover-health-init-pg1-config")["dataset"]["isolation_timeout"]
        == isolation_timeout
    )


def test_haproxy_port_clashes_and_disabled_health_are_refused(tmp_path):
    clash = {**HAPROXY_CLUSTER, "haproxy": {"minions": ["pg1"], "read_write_port": 5432}}
    refused = show_sls(tmp_path, "pg1", {"pgfailover": clash}, DEBIAN, expect_error=True)
    assert "pgfailover:haproxy:read_write_port is 5432, already used on minion pg1 by node pg1" in refused
    no_health = {**HAPROXY_CLUSTER, "health": {"enabled": False}}
    refused = show_sls(tmp_path, "app1", {"pgfailover": no_health}, DEBIAN, expect_error=True)
    assert "pgfailover:health:enabled is false but pgfailover:haproxy:minions lists app1" in refused


def test_the_primary_lets_every_pillar_node_replicate_before_any_standby_joins(tmp_path):
    high = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, DEBIAN, sls="pgfailover.node")
    rules = args_of(high, "pgfailover-node-init-pg1-replicator-hba")["content"].split("\n")
    for node in ("pg1", "pg2"):
        for database in ("replication", '"appdb"', '"postgres"'):
            assert f"hostssl {database} pgautofailover_replicator {node} scram-sha-256" in rules
    without_tls = {**CLUSTER, "ssl": {"mode": "none"}}
    high = show_sls(tmp_path, "pg1", {"pgfailover": without_tls}, DEBIAN, sls="pgfailover.node")
    assert "host replication pgautofailover_replicator pg2 scram-sha-256" in (
        args_of(high, "pgfailover-node-init-pg1-replicator-hba")["content"].split("\n")
    )


def test_the_application_rule_follows_the_ssl_mode_and_quotes_names(tmp_path):
    """With ssl mode none a hostssl rule would never match: the application could not connect."""
    named = {**CLUSTER, "dbname": "App-DB", "app": {"owner": "App.Owner", "cidrs": ["10.0.0.0/24"]}}
    for mode, rule in (("self-signed", "hostssl"), ("none", "host")):
        cluster = {**named, "ssl": {"mode": mode}}
        high = show_sls(tmp_path, "pg1", {"pgfailover": cluster}, DEBIAN, sls="pgfailover.node")
        rules = args_of(high, "pgfailover-node-init-pg1-app-hba")["content"].split("\n")
        assert f'{rule} "App-DB" "App.Owner" 10.0.0.0/24 scram-sha-256' in rules, rules


def test_settings_are_written_as_one_quoted_line_each(tmp_path):
    """Quotes and backslashes are escaped as postgresql.conf reads them; booleans are on/off."""
    settings = {"search_path": '"$user", public', "log_line_prefix": "it's \\%m ", "log_connections": True}
    cluster = {**CLUSTER, "postgresql": {"settings": settings}}
    show_sls(tmp_path, "pg1", {"pgfailover": cluster}, DEBIAN, sls="pgfailover.node")
    rendered = render_template(tmp_path, "pgfailover/files/settings.conf.jinja", {"settings": settings})
    lines = [line for line in rendered.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "log_connections = on",
        "log_line_prefix = 'it''s \\\\%m '",
        "search_path = '\"$user\", public'",
    ], lines


def test_own_ca_becomes_the_service_users_root_certificate(tmp_path):
    """With mode ca, libpq's default root certificate is the pillar's CA: pg_autoctl's waits verify-full."""
    files = {
        "ca_file": "/etc/pgf-ssl/ca.crt",
        "server_cert": "/etc/pgf-ssl/pg1.crt",
        "server_key": "/etc/pgf-ssl/pg1.key",
    }
    cluster = {**CLUSTER, "ssl": {"mode": "ca", **files}}
    high = show_sls(tmp_path, "pg1", {"pgfailover": cluster}, DEBIAN, sls="pgfailover.node")
    link = args_of(high, "pgfailover-config-root-certificate")
    assert (link["name"], link["target"]) == ("/var/lib/postgresql/.postgresql/root.crt", files["ca_file"])
    assert args_of(high, "pgfailover-node-init-pg1-present")["ssl"] == files
    self_signed = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, DEBIAN, sls="pgfailover.node")
    assert "pgfailover-config-root-certificate" not in self_signed


BACKUP_CLUSTER = {
    **CLUSTER,
    "backup": {"minion": "bak", "encryption": True, "schedule": {"diff": None}},
    "passwords": {**CLUSTER["passwords"], "backup": "b" * 24},
}


def test_backups_archive_on_nodes_only_and_the_repository_host_gets_stanza_and_timers(tmp_path):
    pillar = {"pgfailover": BACKUP_CLUSTER}
    node = show_sls(tmp_path, "pg1", pillar, DEBIAN)
    settings = args_of(node, "pgfailover-node-init-pg1-settings")["context"]["settings"]
    assert settings["archive_mode"] is True and settings["archive_timeout"] == 60
    assert settings["archive_command"] == (
        "/usr/bin/pgbackrest --stanza=default --pg1-path=/var/lib/postgresql/pgaf/pg1 archive-push %p"
    )
    assert args_of(node, "pgfailover-backup-node-config")["context"]["backup"]["hostname"] == "bak"
    # Rendered alone (salt-call --local has no mine): the missing identity is a clear failure.
    assert "The Salt mine has no pgBackRest SSH identity of bak" in json.dumps(node)
    monitor = show_sls(tmp_path, "mon", pillar, DEBIAN)
    assert "archive_mode" not in args_of(monitor, "pgfailover-monitor-init-settings")["context"]["settings"]
    assert "pgfailover-backup-identity-key" not in monitor
    repository = show_sls(tmp_path, "bak", pillar, REDHAT)
    assert args_of(repository, "pgfailover-backup-identity-packages")["pkgs"] == [
        "pgbackrest", "openssh-clients", "openssh-server",
    ]  # fmt: skip
    assert args_of(repository, "pgfailover-backup-identity-sshd")["name"] == "sshd"
    assert "pgfailover-package-install-packages" not in repository  # no PostgreSQL server there
    assert args_of(repository, "pgfailover-backup-repository-stanza")["name"] == "default"
    assert "pgfailover-backup-repository-full-timer" in repository
    assert "dead" in repository["pgfailover-backup-repository-diff-timer"]["service"]
    assert "b" * 24 not in json.dumps(repository)  # the passphrase is read by the template only


def test_without_a_backup_section_nothing_of_it_is_rendered(tmp_path):
    node = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, DEBIAN)
    assert not [state for state in node if "backup" in state]
    assert "archive_mode" not in args_of(node, "pgfailover-node-init-pg1-settings")["context"]["settings"]


METRICS_CLUSTER = {**CLUSTER, "metrics": {"port": 9300}}


def test_no_metrics_section_installs_no_exporter(tmp_path):
    high = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, {"os_family": "Debian", "os": "Debian"})
    assert not [state_id for state_id in high if "metrics" in state_id]
    ident = args_of(high, "pgfailover-node-init-pg1-ident-map")["text"]
    assert not [line for line in ident if "pgfailover_metrics" in line]


def test_metrics_render_one_exporter_per_instance_over_the_socket_with_the_formula_queries(tmp_path):
    pillar = {
        "pgfailover": {**METRICS_CLUSTER, "monitor": {"minion": "pg1", "port": 5431, "metrics_port": 9301}}
    }
    high = show_sls(tmp_path, "pg1", pillar, {"os_family": "Debian", "os": "Debian"})
    assert args_of(high, "pgfailover-metrics-init-package")["name"] == "prometheus-postgres-exporter"
    assert (
        args_of(high, "pgfailover-metrics-init-package-unit-stopped")["name"]
        == "prometheus-postgres-exporter"
    )
    node_unit = args_of(high, "pgfailover-metrics-init-node-pg1-unit")
    monitor_unit = args_of(high, "pgfailover-metrics-init-monitor-unit")
    assert node_unit["name"] == "/etc/systemd/system/pgfailover-metrics-node-pg1.service"
    assert (node_unit["context"]["port"], node_unit["context"]["dbname"]) == (9300, "postgres")
    assert (monitor_unit["context"]["port"], monitor_unit["context"]["dbname"]) == (9301, "pg_auto_failover")
    assert node_unit["context"]["user"] == "prometheus" and node_unit["context"]["pgport"] == 5432
    assert args_of(high, "pgfailover-metrics-init-monitor-role")["read_formation"] is True
    assert args_of(high, "pgfailover-metrics-init-node-pg1-role")["read_formation"] is False
    ident = args_of(high, "pgfailover-node-init-pg1-ident-map")["text"]
    assert "pgfailover prometheus pgfailover_metrics  # Managed by Salt (pgfailover)" in ident
    unit = render_template(tmp_path, "pgfailover/files/metrics/exporter.service.jinja", node_unit["context"])
    assert "host=/run/postgresql port=5432 user=pgfailover_metrics dbname=postgres" in unit
    assert "--web.listen-address=0.0.0.0:9300" in unit and "--web.config.file" not in unit
    queries = render_template(
        tmp_path, "pgfailover/files/metrics/queries.yaml.jinja",
        args_of(high, "pgfailover-metrics-init-monitor-queries")["context"],
    )  # fmt: skip
    parsed = yaml.safe_load(queries)
    assert set(parsed) == {"pgfailover_node", "pgfailover_formation", "pgfailover_instance"}
    assert "'apply_settings', 'primary', 'single', 'wait_primary'" in parsed["pgfailover_node"]["query"]
    node_queries = render_template(
        tmp_path, "pgfailover/files/metrics/queries.yaml.jinja",
        args_of(high, "pgfailover-metrics-init-node-pg1-queries")["context"],
    )  # fmt: skip
    assert set(yaml.safe_load(node_queries)) == {"pgfailover_instance"}


def test_metrics_release_ends_the_exporter_sessions_of_each_instance_on_its_shutdown(tmp_path):
    pillar = {
        "pgfailover": {**METRICS_CLUSTER, "monitor": {"minion": "pg1", "port": 5431, "metrics_port": 9301}}
    }
    high = show_sls(tmp_path, "pg1", pillar, {"os_family": "Debian", "os": "Debian"})
    script = args_of(high, "pgfailover-metrics-init-release-script")
    assert script["name"] == "/usr/local/lib/pgfailover/metrics-release" and script["mode"] == "0755"
    for instance in ("node-pg1", "monitor"):
        unit = args_of(high, f"pgfailover-metrics-init-{instance}-release-unit")
        assert unit["name"] == f"/etc/systemd/system/pgfailover-metrics-release-{instance}.service"
        service = args_of(high, f"pgfailover-metrics-init-{instance}-release")
        assert service["name"] == f"pgfailover-metrics-release-{instance}"
        assert {"service": f"pgfailover-metrics-init-{instance}-service"} in service["require_in"]
        text = render_template(tmp_path, "pgfailover/files/metrics/release.service.jinja", unit["context"])
        pgdata = unit["context"]["pgdata"]
        assert "User=postgres" in text and "Restart=always" in text
        assert f"ExecStart=/usr/local/lib/pgfailover/metrics-release {pgdata} pgfailover_metrics" in text
    assert args_of(high, "pgfailover-metrics-init-node-pg1-release-unit")["context"]["pgdata"] == (
        "/var/lib/postgresql/pgaf/pg1"
    )
    clean = show_sls(tmp_path, "pg1", pillar, {"os_family": "Debian", "os": "Debian"}, sls="pgfailover.clean")
    assert args_of(clean, "pgfailover-metrics-clean-node-pg1-release")["name"] == (
        "pgfailover-metrics-release-node-pg1"
    )
    assert args_of(clean, "pgfailover-metrics-clean-release-script")["name"] == script["name"]


def test_metrics_on_redhat_render_the_pgdg_exporter_and_web_config(tmp_path):
    pillar = {
        "pgfailover": {
            **METRICS_CLUSTER,
            "repo": {"kind": "url", "url": "https://mirror.invalid/pgdg/15"},
            "metrics": {"web_config": {"basic_auth_users": {"prometheus": "$2y$10$hash"}}},
        }
    }
    high = show_sls(tmp_path, "pg2", pillar, REDHAT)
    assert args_of(high, "pgfailover-metrics-init-package")["name"] == "postgres_exporter"
    unit = args_of(high, "pgfailover-metrics-init-node-pg2-unit")["context"]
    assert unit["exporter"] == "/usr/bin/postgres_exporter"
    assert unit["web_config"] == "/etc/pgfailover/metrics/web-node-pg2.yaml"
    web = args_of(high, "pgfailover-metrics-init-node-pg2-web-config")
    assert web["mode"] == "0640" and web["dataset"] == {"basic_auth_users": {"prometheus": "$2y$10$hash"}}


def test_metrics_clean_removes_the_exporters_and_their_package(tmp_path):
    grains = {"os_family": "Debian", "os": "Debian"}
    high = show_sls(tmp_path, "mon", {"pgfailover": METRICS_CLUSTER}, grains, sls="pgfailover.clean")
    assert args_of(high, "pgfailover-metrics-clean-monitor-service")["name"] == "pgfailover-metrics-monitor"
    assert args_of(high, "pgfailover-metrics-clean-package")["name"] == "prometheus-postgres-exporter"
    without = show_sls(tmp_path, "mon", {"pgfailover": CLUSTER}, grains, sls="pgfailover.clean")
    assert (
        "pgfailover-metrics-clean-monitor-service" in without
        and "pgfailover-metrics-clean-package" not in without
    )


def test_every_file_of_the_formula_can_be_overridden_per_minion_or_os_family(tmp_path):
    """TOFS: files/<minion ID>/NAME, files/<os_family>/NAME, then the formula's files/NAME."""
    pillar = {"pgfailover": {**CLUSTER, "haproxy": {"minions": ["pg1"]}, "metrics": {}}}
    high = show_sls(tmp_path, "pg1", pillar, {"os_family": "Debian", "os": "Debian"})
    assert args_of(high, "pgfailover-haproxy-init-config")["source"] == [
        "salt://pgfailover/files/pg1/haproxy.cfg.jinja",
        "salt://pgfailover/files/Debian/haproxy.cfg.jinja",
        "salt://pgfailover/files/haproxy.cfg.jinja",
    ]
    sources = [
        args["source"]
        for state_id in high
        for args in [args_of(high, state_id)]
        if isinstance(args.get("source"), (str, list))
    ]
    assert sources and all(isinstance(source, list) and len(source) == 3 for source in sources), sources
    renamed = {
        "tofs": {"files_switch": ["os_family"], "source_files": {"haproxy.cfg.jinja": ["site/haproxy.cfg"]}}
    }
    high = show_sls(
        tmp_path, "pg1", {"pgfailover": {**pillar["pgfailover"], **renamed}}, {"os_family": "Debian"}
    )
    assert args_of(high, "pgfailover-haproxy-init-config")["source"] == [
        "salt://pgfailover/files/Debian/site/haproxy.cfg",
        "salt://pgfailover/files/Debian/haproxy.cfg.jinja",
        "salt://pgfailover/files/site/haproxy.cfg",
        "salt://pgfailover/files/haproxy.cfg.jinja",
    ]


def test_an_os_family_without_parameters_is_refused_by_name(tmp_path):
    error = show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, {"os_family": "Suse"}, expect_error=True)
    assert "OS family Suse has no parameters here; supported: Debian, RedHat" in error


@pytest.mark.parametrize(
    ("grains", "packages", "bindir"),
    [
        ({"os_family": "Debian", "os": "Debian"}, "postgresql-15", "/usr/lib/postgresql/15/bin"),
        (REDHAT, "postgresql15-server", "/usr/pgsql-15/bin"),
    ],
    ids=["Debian", "RedHat"],
)
def test_mapdata_dumps_what_the_host_resolves_and_no_secret(tmp_path, grains, packages, bindir):
    pillar = {"pgfailover": {**CLUSTER, "repo": {"kind": "url", "url": "https://mirror.invalid/repo"}}}
    high = show_sls(tmp_path, "pg1", pillar, grains, sls="pgfailover._mapdata")
    dump = args_of(high, "pgfailover-mapdata-dump")
    values = dump["dataset"]["values"]
    assert dump["name"] == "/tmp/salt_mapdata_dump.yaml" and dump["mode"] == "0600"
    assert packages in values["packages"] and values["bindir"] == bindir
    assert [node["name"] for node in values["local_nodes"]] == ["pg1"] and values["is_monitor"] is False
    assert "passwords" not in values and "a" * 12 not in json.dumps(dump)


BILLING = {
    "dbname": "billing",
    "nodes": [{"name": "pgb1"}, {"name": "pgb2", "minion": "pg2", "port": 5433}],
    "number_sync_standbys": 0,
    "app": {"owner": "billing", "cidrs": ["10.1.0.0/24"]},
    "passwords": {"app": "b" * 12},
}
TWO_FORMATIONS = {**CLUSTER, "formations": {"billing": BILLING}}


def test_a_second_formation_is_created_with_the_monitor_and_converged_on_its_own(tmp_path):
    pillar = {"pgfailover": TWO_FORMATIONS}
    monitor = show_sls(tmp_path, "mon", pillar, DEBIAN, sls="pgfailover.monitor")
    created = args_of(monitor, "pgfailover-monitor-init-formation-billing")
    assert created["name"] == "billing" and created["dbname"] == "billing"
    assert "number_sync_standbys" not in created  # set once its nodes have converged
    assert "pgfailover-monitor-init-formation-default" not in monitor  # pg_auto_failover's own
    formation = show_sls(tmp_path, "mon", pillar, DEBIAN, sls="pgfailover.formation")
    assert args_of(formation, "pgfailover-formation-init-converged")["expect_nodes"] == 2
    assert args_of(formation, "pgfailover-formation-init-billing-converged")["name"] == "billing"
    settings = args_of(formation, "pgfailover-formation-init-billing-settings")
    assert (settings["dbname"], settings["number_sync_standbys"]) == ("billing", 0)
    assert "pgfailover-formation-init-billing-final-check" in formation


def test_a_node_of_a_second_formation_joins_it_with_its_own_database_owner_and_peers(tmp_path):
    node = show_sls(tmp_path, "pgb1", {"pgfailover": TWO_FORMATIONS}, DEBIAN, sls="pgfailover.node")
    present = args_of(node, "pgfailover-node-init-pgb1-present")
    assert (present["formation"], present["dbname"]) == ("billing", "billing")
    join = args_of(node, "pgfailover-node-init-pgb1-ready-to-join")
    assert (join["first_node"], join["formation"]) == ("pgb1", "billing")
    owner = args_of(node, "pgfailover-node-init-pgb1-app-password")
    assert owner["name"] == "billing" and owner["owns_database"] == "billing"
    assert owner["password_pillar"] == "pgfailover:formations:billing:passwords:app"
    assert args_of(node, "pgfailover-node-init-pgb1-replicator-password")["password_pillar"] == (
        "pgfailover:passwords:replicator"
    )
    peers = args_of(node, "pgfailover-node-init-pgb1-replicator-hba")["content"]
    assert "pgautofailover_replicator pgb1 " in peers and "pgautofailover_replicator pg2 " in peers
    assert "pgautofailover_replicator pg1 " not in peers  # another formation's node
    assert '"billing" "billing" 10.1.0.0/24' in args_of(node, "pgfailover-node-init-pgb1-app-hba")["content"]
    assert (
        args_of(node, "pgfailover-node-init-pgb1-ready")["formation"] == "billing"
    )  # asked of its formation


def test_a_host_with_nodes_of_two_formations_gets_both_each_in_its_own(tmp_path):
    high = show_sls(tmp_path, "pg2", {"pgfailover": TWO_FORMATIONS}, DEBIAN, sls="pgfailover.node")
    default, billing = (args_of(high, f"pgfailover-node-init-{n}-present") for n in ("pg2", "pgb2"))
    assert (default["formation"], default["dbname"], default["port"]) == ("default", "appdb", 5432)
    assert (billing["formation"], billing["dbname"], billing["port"]) == ("billing", "billing", 5433)
    assert args_of(high, "pgfailover-node-init-pgb2-ready-to-join")["first_node"] == "pgb1"
    assert args_of(high, "pgfailover-node-init-pg2-ready-to-join")["first_node"] == "pg1"
    mapdata = show_sls(tmp_path, "pg2", {"pgfailover": TWO_FORMATIONS}, DEBIAN, sls="pgfailover._mapdata")
    dump = args_of(mapdata, "pgfailover-mapdata-dump")
    values = dump["dataset"]["values"]
    assert [f["name"] for f in values["formations"]] == ["default", "billing"]
    assert [(n["name"], n["formation"]) for n in values["local_nodes"]] == [
        ("pg2", "default"),
        ("pgb2", "billing"),
    ]
    assert "b" * 12 not in json.dumps(dump)  # the billing owner's password stays in the pillar
    cleaned = show_sls(tmp_path, "pg2", {"pgfailover": TWO_FORMATIONS}, DEBIAN, sls="pgfailover.node.clean")
    assert args_of(cleaned, "pgfailover-node-clean-pgb2-dropped")["formation"] == "billing"
    assert args_of(cleaned, "pgfailover-node-clean-pg2-dropped")["formation"] == "default"


def test_the_orchestration_builds_every_formations_hosts_in_one_step(tmp_path):
    high = show_sls(tmp_path, "mon", {"pgfailover": TWO_FORMATIONS}, DEBIAN, sls="pgfailover.orch")
    assert set(args_of(high, "pgfailover-orch-init-nodes")["tgt"].split(",")) == {"pg1", "pg2", "pgb1"}
    assert set(args_of(high, "pgfailover-orch-init-sync")["tgt"].split(",")) == {"mon", "pg1", "pg2", "pgb1"}


SALES = {**CLUSTER, "monitor": {"minion": "mon2", "port": 5431}, "nodes": [{"name": "s1"}, {"name": "s2"}]}


def test_an_orchestration_builds_the_cluster_the_master_pillar_names(tmp_path):
    """One master, several clusters: pgfailover_clusters holds them, pgfailover_cluster picks one."""
    clusters = {"pgfailover_clusters": {"billing": CLUSTER, "sales": SALES}}
    high = show_sls(
        tmp_path, "master", {**clusters, "pgfailover_cluster": "sales"}, DEBIAN, sls="pgfailover.orch"
    )
    assert args_of(high, "pgfailover-orch-init-monitor")["tgt"] == "mon2"
    assert set(args_of(high, "pgfailover-orch-init-nodes")["tgt"].split(",")) == {"s1", "s2"}
    error = show_sls(
        tmp_path,
        "master",
        {**clusters, "pgfailover_cluster": "crm"},
        DEBIAN,
        sls="pgfailover.orch",
        expect_error=True,
    )
    assert (
        "pillar key pgfailover_cluster is crm; allowed: a cluster of pillar key pgfailover_clusters" in error
    )
    assert "(billing, sales)" in error


def test_dropping_one_formation_cleans_only_its_nodes_and_then_the_formation(tmp_path):
    pillar = {"pgfailover": {**TWO_FORMATIONS, "clean": {"formation": "billing"}, "metrics": {}}}
    cleaned = show_sls(tmp_path, "pg2", pillar, DEBIAN, sls="pgfailover.clean")
    assert args_of(cleaned, "pgfailover-node-clean-pgb2-dropped")["formation"] == "billing"
    assert "pgfailover-node-clean-pg2-dropped" not in cleaned  # the default formation's node stays
    assert "pgfailover-metrics-clean-node-pgb2-service" in cleaned
    assert "pgfailover-metrics-clean-node-pg2-service" not in cleaned
    assert "pgfailover-metrics-clean-package" not in cleaned  # pg2's own exporter still needs it
    monitor = show_sls(tmp_path, "mon", pillar, DEBIAN, sls="pgfailover.formation.clean")
    assert args_of(monitor, "pgfailover-formation-clean-dropped")["name"] == "billing"
    assert (
        show_sls(tmp_path, "mon", {"pgfailover": TWO_FORMATIONS}, DEBIAN, sls="pgfailover.formation.clean")
        == {}
    )


@pytest.mark.parametrize(
    ("name", "says"),
    [("default", "pillar key drop_formation is default"), ("crm", "pillar key drop_formation is crm")],
)
def test_dropping_the_top_level_or_an_unknown_formation_is_refused(tmp_path, name, says):
    pillar = {"pgfailover": TWO_FORMATIONS, "drop_formation": name}
    error = show_sls(tmp_path, "mon", pillar, DEBIAN, sls="pgfailover.orch.drop_formation", expect_error=True)
    assert says in error and "allowed: a formation of pgfailover:formations (billing)" in error


def render_steps(tmp_path, table):
    """orch/steps.jinja's macros through Salt's Jinja, called as an orchestration calls them."""
    context = {
        "mapdata": {"health": {"enabled": True}, "haproxy": {"minions": ["mon"]}},
        "joining": [{"name": "pg2", "minion": "pg2"}, {"name": "pg4", "minion": "pg4"}],
        "table": [{"nodename": name} for name in table],
        "hosted": {
            name: {"minion": name, "pgdata": f"/d/{name}", "unit": f"u-{name}"} for name in ("pg1", "pg2")
        },
    }
    return subprocess.run(
        [SALT_CALL, "--local", "-c", str(tmp_path), "--out=json", "slsutil.renderer",
         "salt://test/functional/templates/orch_steps.jinja", "default_renderer=jinja|yaml",
         f"context={json.dumps(context)}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_orchestration_steps_follow_each_other_and_skip_synced_minions(tmp_path):
    """
    Each macro's first step requires the step before it and leaves its last
    one in `chain`; minions already synced are not synced again; the primary
    rolls last, after a switchover.
    """
    show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, DEBIAN, sls="pgfailover.node")
    result = render_steps(tmp_path, ["pg1", "pg2"])
    assert result.returncode == 0, result.stdout + result.stderr
    steps = json.loads(result.stdout)["local"]

    def required(step_id):
        function = next(iter(steps[step_id]))
        return [item["require"] for item in steps[step_id][function] if "require" in item]

    assert set(steps) == {
        "o-join-sync", "o-join-prepare", "o-join-pg2", "o-join-pg4", "o-haproxy",
        "o-pg2-maintenance-on", "o-pg2-in-maintenance", "o-pg2-restart", "o-pg2-maintenance-off",
        "o-pg2-converged", "o-pg1-switchover", "o-pg1-maintenance-on", "o-pg1-in-maintenance",
        "o-pg1-restart", "o-pg1-maintenance-off", "o-pg1-converged", "last",
    }  # fmt: skip
    assert {"tgt": "pg4"} in steps["o-join-sync"]["salt.state"]  # pg2 was synced before
    assert required("o-join-sync") == [[{"salt": "earlier"}]]
    assert required("o-join-pg2") == [[{"salt": "o-join-prepare"}]]  # one host at a time
    assert required("o-join-pg4") == [[{"salt": "o-join-pg2"}]]
    assert required("o-haproxy") == [[{"salt": "o-join-pg4"}]]
    assert required("o-pg2-maintenance-on") == [[{"salt": "o-haproxy"}]]
    assert required("o-pg1-switchover") == [[{"salt": "o-pg2-converged"}]]
    assert steps["last"] == "o-pg1-converged"


def test_a_rolling_step_for_a_node_no_minion_hosts_is_refused(tmp_path):
    show_sls(tmp_path, "pg1", {"pgfailover": CLUSTER}, DEBIAN, sls="pgfailover.node")
    result = render_steps(tmp_path, ["pg1", "pg2", "pg9"])
    assert result.returncode != 0
    assert "o refused: no minion is known for node(s) pg9" in result.stdout + result.stderr
