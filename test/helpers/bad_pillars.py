"""
Bad pgfailover pillars, each with the words its refusal must contain: shared
by the validator's unit tests and the lab test that proves nothing changed on
a host when one of them is applied.
"""

import copy
import os

import yaml

from lab.paths import REPO

LAB_PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")


def good():
    """The lab's valid pillar (its pgfailover key)."""
    with open(LAB_PILLAR) as f:
        return yaml.safe_load(f)["pgfailover"]


def _set(path, value):
    def change(cluster):
        *parents, last = path.split(":")
        target = cluster
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
        if value is DELETE:
            target.pop(last, None)
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


DELETE = object()

# (id, change, words the refusal names)
CASES = [
    (
        "unknown-top-key",
        _set("monitr", {"minion": "mon"}),
        "pgfailover:monitr is unknown; did you mean monitor?",
    ),
    (
        "unknown-node-key",
        _set("nodes:0:candidate_prio", 10),
        "pgfailover:nodes:0:candidate_prio is unknown; did you mean candidate_priority?",
    ),
    ("no-monitor", _set("monitor", DELETE), "pgfailover:monitor:minion is missing"),
    (
        "two-monitors",
        _set("monitor", [{"minion": "mon"}, {"minion": "pg1"}]),
        "pgfailover:monitor lists 2 monitors",
    ),
    ("no-nodes", _set("nodes", []), "pgfailover:nodes is missing or empty"),
    (
        "negative-isolation-timeout",
        _set("health:isolation_timeout", -1),
        "pgfailover:health:isolation_timeout is -1; allowed: null (automatic), 0 (never) or whole seconds",
    ),
    ("node-without-name", _set("nodes:1", {"minion": "pg2"}), "pgfailover:nodes:1:name is missing"),
    (
        "node-bad-address",
        _set("nodes:0:hostname", "pg 1"),
        "pgfailover:nodes:0:hostname is 'pg 1'; allowed: a host name",
    ),
    ("duplicate-names", _set("nodes:1", {"name": "pg1"}), "names pg1 more than once"),
    ("duplicate-address", _set("nodes:1:hostname", "pg1"), "give pg1:5432 to more than one instance"),
    (
        "duplicate-port-on-host",
        _set("nodes:1", {"name": "pg2", "minion": "mon", "port": 5431}),
        "on minion mon with port 5431",
    ),
    (
        "priority-above-100",
        _set("nodes:0:candidate_priority", 101),
        "pgfailover:nodes:0:candidate_priority is 101; allowed: a whole number from 0 to 100",
    ),
    ("priority-negative", _set("nodes:2:candidate_priority", -1), "candidate_priority is -1"),
    (
        "too-many-sync-standbys",
        _set("number_sync_standbys", 2),
        "pgfailover:number_sync_standbys is 2; allowed: at most 1",
    ),
    (
        "sync-standby-without-eligible",
        _set("nodes:2:candidate_priority", 0),
        "number_sync_standbys is 1; allowed: at most 0",
    ),
    ("unknown-auth", _set("auth", "scram"), "pgfailover:auth is 'scram'; allowed: scram-sha-256, md5"),
    ("trust", _set("auth", "trust"), "pgfailover:auth is 'trust'; allowed: scram-sha-256, md5, password"),
    ("no-ssl-choice", _set("ssl", DELETE), "pgfailover:ssl:mode is missing"),
    (
        "half-a-certificate-set",
        _set("ssl", {"mode": "ca", "ca_file": "/etc/ssl/ca.pem"}),
        "not server_cert, server_key",
    ),
    ("bad-cidr", _set("app:cidrs", ["10.147.0.0/33"]), "pgfailover:app:cidrs:0 is '10.147.0.0/33'"),
    ("missing-password", _set("passwords:replicator", DELETE), "pgfailover:passwords:replicator is missing"),
    (
        "short-password",
        _set("passwords:monitor", "short"),
        "pgfailover:passwords:monitor is too short (5 characters)",
    ),
    ("version-not-packaged", _set("postgresql_version", 11), "pgfailover:postgresql_version is 11"),
    ("bad-port", _set("monitor:port", 70000), "pgfailover:monitor:port is 70000"),
    (
        "unknown-profile",
        _set("failover", {"profile": "quick"}),
        "pgfailover:failover:profile is 'quick'; allowed: default, fast",
    ),
    (
        "unsafe-timeouts",
        _set("failover", {"profile": "fast", "network_partition_timeout": 20}),
        "two nodes could be writable at once",
    ),
]


# Hardening (issue 20): refused by the validator's unit tests (the lab test runs
# CASES above; these refusals come from the same render step).
HARDENING_CASES = [
    (
        "owner-is-the-superuser",
        _set("app:owner", "postgres"),
        "pgfailover:app:owner is 'postgres'; allowed: an application role of its own",
    ),
    ("owner-is-the-replicator", _set("app:owner", "pgautofailover_replicator"), "pgfailover:app:owner is"),
    ("owner-is-autoctl-node", _set("app:owner", "autoctl_node"), "pgfailover:app:owner is 'autoctl_node'"),
    ("owner-is-predefined", _set("app:owner", "pg_monitor"), "pgfailover:app:owner is 'pg_monitor'"),
    (
        "setting-name-injects",
        _set("postgresql:settings", {"work_mem\nssl": "off"}),
        "pgfailover:postgresql:settings has a setting named 'work_mem\\nssl'",
    ),
    (
        "setting-value-injects",
        _set("postgresql:settings:work_mem", "4MB\nssl = off"),
        "pgfailover:postgresql:settings:work_mem is '4MB\\nssl = off'; allowed: a value on one line",
    ),
    (
        "setting-value-is-a-list",
        _set("postgresql:settings:work_mem", ["4MB"]),
        "pgfailover:postgresql:settings:work_mem is ['4MB']; allowed: a string, a number",
    ),
    (
        "settings-are-a-list",
        _set("postgresql:settings", ["work_mem=4MB"]),
        "pgfailover:postgresql:settings is ['work_mem=4MB']; allowed: a mapping",
    ),
    ("path-with-shell", _set("health:config_dir", "/etc/pgf$(id)"), "pgfailover:health:config_dir is"),
    ("path-with-dotdot", _set("monitor:pgdata", "/var/lib/../../etc"), "pgfailover:monitor:pgdata is"),
    ("node-name-newline", _set("nodes:0:name", "pg1\n"), "pgfailover:nodes:0:name is 'pg1\\n'"),
    ("host-newline", _set("monitor:hostname", "mon\n"), "pgfailover:monitor:hostname is 'mon\\n'"),
    ("minion-newline", _set("monitor:minion", "mon\n"), "pgfailover:monitor:minion is 'mon\\n'"),
    ("port-is-a-list", _set("nodes:0:port", [5432]), "pgfailover:nodes:0:port is [5432]; allowed: a port"),
    ("haproxy-minion-dict", _set("haproxy:minions", [{"mon": 1}]), "pgfailover:haproxy:minions is"),
    ("password-newline", _set("passwords:app", "lab-app-Zi8v\nx"), "pgfailover:passwords:app is a str"),
    (
        "skip-pg-hba-is-gone",
        _set("skip_pg_hba", True),
        "pgfailover:skip_pg_hba is unknown",
    ),
    (
        "two-nodes-one-data-directory",
        _set(
            "nodes:1",
            {"name": "pg2", "minion": "pg1", "port": 5433, "pgdata": "/var/lib/postgresql/pgaf/pg1"},
        ),
        "put node pg1 in /var/lib/postgresql/pgaf/pg1 and node pg2 in /var/lib/postgresql/pgaf/pg1",
    ),
    (
        "data-directory-inside-the-monitors",
        _set("nodes:0", {"name": "pg1", "minion": "mon", "pgdata": "/var/lib/postgresql/pgaf/monitor/pg1"}),
        "and the monitor in /var/lib/postgresql/pgaf/monitor on minion mon",
    ),
]


def broken(change):
    cluster = copy.deepcopy(good())
    change(cluster)
    return cluster


def _with_formations(formations, **top):
    """A change that adds pgfailover:formations (and top-level keys) to the lab's pillar."""

    def change(cluster):
        cluster["formations"] = copy.deepcopy(formations)
        cluster.update(top)

    return change


BILLING = {
    "dbname": "billing",
    "nodes": [{"name": "pgb1"}, {"name": "pgb2"}, {"name": "pgb3"}],
    "number_sync_standbys": 1,
    "app": {"owner": "billing", "cidrs": ["10.147.0.0/24"]},
    "passwords": {"app": "lab-billing-Ke4t"},
}

# Formations on the same monitor (pgfailover:formations): checked by the
# validator's unit tests (the orchestration refuses them the same way).
FORMATION_CASES = [
    (
        "formation-node-name-taken",
        _with_formations(
            {"billing": {**BILLING, "nodes": [{"name": "pg1", "minion": "pgb1"}, {"name": "pgb2"}]}}
        ),
        "pillar key pgfailover:nodes (or pgfailover:formations:*:nodes) names pg1 more than once",
    ),
    (
        "formation-port-taken-on-a-shared-minion",
        _with_formations(
            {"billing": {**BILLING, "nodes": [{"name": "pgb1", "minion": "pg1"}, {"name": "pgb2"}]}}
        ),
        "put two instances on minion pg1 with port 5432",
    ),
    (
        "formation-repeats-the-top-level-one",
        _with_formations({"default": BILLING}),
        "pillar key pgfailover:formations:default names the top-level formation default",
    ),
    (
        "formation-without-nodes",
        _with_formations({"billing": {**BILLING, "nodes": []}}),
        "pillar key pgfailover:formations:billing:nodes is missing or empty",
    ),
    (
        "formation-unknown-key",
        _with_formations({"billing": {**BILLING, "dbnmae": "x"}}),
        "pillar key pgfailover:formations:billing:dbnmae is unknown; did you mean dbname?",
    ),
    (
        "formation-owner-without-password",
        _with_formations({"billing": {**BILLING, "passwords": {}}}),
        "pillar key pgfailover:formations:billing:passwords:app is missing",
    ),
    (
        "formation-too-many-sync-standbys",
        _with_formations({"billing": {**BILLING, "number_sync_standbys": 2}}),
        "pillar key pgfailover:formations:billing:number_sync_standbys is 2; allowed: at most 1",
    ),
    (
        "formation-bad-name",
        _with_formations({"bill ing": BILLING}),
        "pillar key pgfailover:formations has a formation named 'bill ing'",
    ),
    (
        "formation-without-haproxy-ports",
        _with_formations({"billing": BILLING}, haproxy={"minions": ["mon"]}),
        "pillar key pgfailover:formations:billing:haproxy:read_write_port is missing: with "
        "pgfailover:haproxy:minions every formation needs HAProxy ports of its own",
    ),
    (
        "formation-haproxy-port-taken",
        _with_formations(
            {"billing": {**BILLING, "haproxy": {"read_write_port": 5000, "read_only_port": 5101}}},
            haproxy={"minions": ["mon"]},
        ),
        "pillar keys pgfailover:haproxy:read_write_port and pgfailover:formations:billing:haproxy:"
        "read_write_port are both 5000",
    ),
    (
        "formation-health-endpoint-port-taken",
        _with_formations(
            {
                "billing": {
                    **BILLING,
                    "nodes": [{"name": f"pgb{i}", "minion": f"pg{i}", "port": 5433} for i in (1, 2, 3)],
                    "haproxy": {"read_write_port": 5100, "read_only_port": 5101},
                }
            },
            haproxy={"minions": ["mon"]},
        ),
        "pillar key pgfailover:formations:billing:nodes:0:health_port (or pgfailover:health:port) puts node "
        "pgb1's health endpoint on port 8008 of minion pg1, already used by the health endpoint of node pg1",
    ),
    (
        "formations-with-backup",
        _with_formations({"billing": BILLING}, backup={"minion": "mon"}),
        "pillar keys pgfailover:formations and pgfailover:backup are both set",
    ),
]
# Valid: two formations on the same hosts behind one HAProxy.
BILLING_BEHIND_HAPROXY = {
    **BILLING,
    "nodes": [{"name": f"pgb{i}", "minion": f"pg{i}", "port": 5433, "health_port": 8009} for i in (1, 2, 3)],
    "haproxy": {"read_write_port": 5100, "read_only_port": 5101},
}
