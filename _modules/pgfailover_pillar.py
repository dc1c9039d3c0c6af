"""
Validate the ``pgfailover`` pillar before anything changes on a host.

The formula's ``map.jinja`` calls :py:func:`validate` while it renders, on
every minion (highstate) and on the master (orchestrations), and refuses the
whole run with every problem found. Each problem names the pillar key, the bad
value and what is allowed; an unknown key names the closest known one.
"""

import difflib
import ipaddress
import re

__virtualname__ = "pgfailover_pillar"

# Known keys and what each holds. A dict is a nested mapping; NODE and
# MONITOR describe list items and the monitor's mapping.
MONITOR = {"minion": "name", "hostname": "host", "port": "port", "pgdata": "path"}
NODE = {
    "name": "name",
    "minion": "name",
    "hostname": "host",
    "port": "port",
    "pgdata": "path",
    "candidate_priority": "priority",
    "replication_quorum": "bool",
    "health_port": "port",
}
SCHEMA = {
    "lookup": "any",
    "postgresql_version": "version",
    "repo": {
        "kind": "repo_kind",
        "url": "text",
        "suite": "text",
        "components": "list",
        "trusted": "bool",
        "gpgkey": "text",
    },
    "rpm_file": "any",
    "formation": "name",
    "dbname": "name",
    "auth": "auth",
    "skip_pg_hba": "bool",
    "ssl": {"mode": "ssl_mode", "ca_file": "path", "server_cert": "path", "server_key": "path"},
    "monitor": "monitor",
    "nodes": "nodes",
    "number_sync_standbys": "sync",
    "app": {"owner": "name", "cidrs": "cidrs"},
    "postgresql": {"settings": "any"},
    "failover": {"profile": "profile", "monitor": "any", "network_partition_timeout": "seconds"},
    "socket_dir": "path",
    "health": {
        "enabled": "optional_bool",
        "bind": "host",
        "port": "port",
        "replica_max_lag_bytes": "bytes",
        "replica_max_silence": "seconds",
        "program": "path",
        "config_dir": "path",
    },
    "haproxy": {
        "minions": "names",
        "bind": "host",
        "read_write_port": "port",
        "read_only_port": "port",
        "stats_port": "optional_port",
        "check_interval": "milliseconds",
        "fall": "count",
        "rise": "count",
        "maxconn": "maxconn",
        "timeout": {
            "connect": "milliseconds",
            "client": "milliseconds",
            "server": "milliseconds",
            "check": "milliseconds",
        },
    },
    "clean": {"remove_data": "bool", "remove_packages": "bool", "allow_last_standby": "bool"},
    "passwords": {"autoctl_node": "secret", "replicator": "secret", "monitor": "secret", "app": "secret"},
}
AUTH_METHODS = ("trust", "scram-sha-256", "md5", "password")
SSL_MODES = ("self-signed", "ca", "none")
REPO_KINDS = ("distribution", "url", "rpm_file")
PROFILES = ("default", "fast")
MIN_PASSWORD_LENGTH = 12
# PostgreSQL major versions each package source offers.
DEBIAN_RELEASE_VERSIONS = {"11": (13,), "12": (15,), "13": (17,)}
PGDG_VERSIONS = (13, 14, 15, 16, 17)
VENDOR_RPM_VERSIONS = (13,)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def __virtual__():
    return __virtualname__


def validate(cluster=None, failover_profiles=None, os_family=None, osmajorrelease=None):
    """
    Every problem of a ``pgfailover`` pillar, as sentences naming the pillar
    key; an empty list when it is valid. Without ``cluster``, this minion's
    pillar; the OS defaults come from its grains; ``failover_profiles`` are
    the formula's (parameters/defaults.yaml), for the failover timing rule.

    CLI Example:

    .. code-block:: bash

        salt '*' pgfailover_pillar.validate
        salt-run salt.cmd pgfailover_pillar.validate
    """
    if cluster is None:
        cluster = __pillar__.get("pgfailover", {})
    grains = globals().get("__grains__", {})
    os_family = os_family or grains.get("os_family", "Debian")
    osmajorrelease = str(osmajorrelease or grains.get("osmajorrelease", "12"))
    if not isinstance(cluster, dict):
        return [f"pillar key pgfailover must be a mapping, not {type(cluster).__name__}"]
    problems = []
    _check_mapping("pgfailover", cluster, SCHEMA, problems)
    _check_monitor(cluster, problems)
    nodes = _check_nodes(cluster, problems)
    _check_addresses(cluster, nodes, problems)
    _check_sync_standbys(cluster, nodes, problems)
    _check_auth(cluster, problems)
    _check_ssl(cluster, problems)
    # On the master (orchestrations) the grains are the master's, not the
    # hosts': each host checks its packages when it renders the formula.
    if globals().get("__opts__", {}).get("__role") != "master":
        _check_version(cluster, os_family, osmajorrelease, problems)
    _check_failover(cluster, failover_profiles or {}, problems)
    _check_haproxy(cluster, nodes, problems)
    return problems


# -- shape ------------------------------------------------------------------


def _check_mapping(path, value, schema, problems):
    if not isinstance(value, dict):
        problems.append(f"pillar key {path} must be a mapping, not {value!r}")
        return
    for key, item in value.items():
        spec = schema.get(key)
        if spec is None:
            close = difflib.get_close_matches(str(key), list(schema), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(schema)}"
            problems.append(f"pillar key {path}:{key} is unknown{hint}")
        elif isinstance(spec, dict):
            _check_mapping(f"{path}:{key}", item, spec, problems)
        else:
            _check_value(f"{path}:{key}", item, spec, problems)


def _check_value(path, value, kind, problems):
    problem = CHECKS[kind](value) if kind in CHECKS else None
    if problem:
        problems.append(f"pillar key {path} is {value!r}; allowed: {problem}")


def _whole(value, low, high):
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


CHECKS = {
    "name": lambda v: (
        None if isinstance(v, str) and _NAME.match(v) else "letters, digits, _ . - (63 at most)"
    ),
    "host": lambda v: None if isinstance(v, str) and _HOST.match(v) else "a host name or IP address",
    "port": lambda v: None if _whole(v, 1, 65535) else "a port number, 1 to 65535",
    "path": lambda v: None if isinstance(v, str) and v.startswith("/") else "an absolute path",
    "priority": lambda v: None if _whole(v, 0, 100) else "a whole number from 0 to 100",
    "bool": lambda v: None if isinstance(v, bool) else "true or false",
    "text": lambda v: None if isinstance(v, str) and v else "a non-empty string",
    "list": lambda v: None if isinstance(v, list) else "a list",
    "version": lambda v: None if _whole(v, 10, 99) else "a PostgreSQL major version such as 15",
    "repo_kind": lambda v: None if v in REPO_KINDS else ", ".join(REPO_KINDS),
    "auth": lambda v: None if v in AUTH_METHODS else ", ".join(AUTH_METHODS),
    "ssl_mode": lambda v: None if v in SSL_MODES else ", ".join(SSL_MODES),
    "profile": lambda v: None if v in PROFILES else ", ".join(PROFILES),
    "seconds": lambda v: None if v is None or _whole(v, 1, 3600) else "whole seconds, 1 to 3600",
    "sync": lambda v: None if v is None or _whole(v, 0, 100) else "null or a whole number from 0",
    "secret": lambda v: None if isinstance(v, str) else "a string (keep it in an encrypted renderer)",
    "cidrs": lambda v: None if isinstance(v, list) else "a list of networks such as 10.0.0.0/24",
    "nodes": lambda v: None if isinstance(v, list) else "a list of nodes, each with a name",
    "optional_bool": lambda v: None if v is None or isinstance(v, bool) else "true, false or null (auto)",
    "optional_port": lambda v: None if v is None or _whole(v, 1, 65535) else "null or a port, 1 to 65535",
    "names": lambda v: (
        None
        if isinstance(v, list) and all(isinstance(i, str) and _NAME.match(i) for i in v)
        else "a list of minion IDs"
    ),
    "milliseconds": lambda v: None if _whole(v, 100, 86_400_000) else "milliseconds, 100 to 86400000",
    "count": lambda v: None if _whole(v, 1, 100) else "a whole number from 1 to 100",
    "maxconn": lambda v: None if _whole(v, 1, 1_000_000) else "a whole number from 1 to 1000000",
    "bytes": lambda v: None if _whole(v, 0, 2**40) else "a number of bytes, 0 to 2^40",
    "monitor": lambda v: None,  # _check_monitor
    "any": lambda v: None,
}


# -- roles ------------------------------------------------------------------


def _check_monitor(cluster, problems):
    monitor = cluster.get("monitor")
    if isinstance(monitor, list):
        problems.append(
            f"pillar key pgfailover:monitor lists {len(monitor)} monitors; a formation has exactly one "
            "(a mapping with its minion)"
        )
    elif not isinstance(monitor, dict) or not monitor.get("minion"):
        problems.append(
            "pillar key pgfailover:monitor:minion is missing: name the minion that runs the monitor"
        )
    if isinstance(monitor, dict):
        _check_mapping("pgfailover:monitor", monitor, MONITOR, problems)


def _check_nodes(cluster, problems):
    """The well-formed nodes, with defaults applied; problems for the others."""
    nodes = cluster.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        problems.append("pillar key pgfailover:nodes is missing or empty: list the PostgreSQL nodes by name")
        return []
    good = []
    for index, node in enumerate(nodes):
        path = f"pgfailover:nodes:{index}"
        if not isinstance(node, dict):
            problems.append(f"pillar key {path} is {node!r}; allowed: a mapping with at least a name")
            continue
        _check_mapping(path, node, NODE, problems)
        if not node.get("name"):
            problems.append(f"pillar key {path}:name is missing: every node needs a name")
            continue
        minion = node.get("minion", node["name"])
        good.append(
            {
                "name": node["name"],
                "minion": minion,
                "hostname": node.get("hostname", minion),
                "port": node.get("port", 5432),
                "pgdata": node.get("pgdata", node["name"]),
                "candidate_priority": node.get("candidate_priority", 50),
                "replication_quorum": node.get("replication_quorum", True),
            }
        )
    return good


def _duplicates(values):
    seen, twice = set(), []
    for value in values:
        if value in seen and value not in twice:
            twice.append(value)
        seen.add(value)
    return twice


def _check_addresses(cluster, nodes, problems):
    for name in _duplicates(node["name"] for node in nodes):
        problems.append(f"pillar key pgfailover:nodes names {name} more than once; node names are unique")
    monitor = cluster.get("monitor") if isinstance(cluster.get("monitor"), dict) else {}
    endpoints = [(node["hostname"], node["port"]) for node in nodes]
    listeners = [(node["minion"], node["port"]) for node in nodes]
    if monitor.get("minion"):
        endpoints.append((monitor.get("hostname", monitor["minion"]), monitor.get("port", 5431)))
        listeners.append((monitor["minion"], monitor.get("port", 5431)))
    for host, port in _duplicates(endpoints):
        problems.append(
            f"pillar keys pgfailover:nodes / pgfailover:monitor give {host}:{port} to more than one "
            "instance; each needs its own address and port"
        )
    for minion, port in _duplicates(listeners):
        problems.append(
            f"pillar keys pgfailover:nodes / pgfailover:monitor put two instances on minion {minion} with "
            f"port {port}; give each its own port"
        )
    for minion, pgdata in _duplicates((node["minion"], node["pgdata"]) for node in nodes):
        problems.append(f"pillar key pgfailover:nodes puts two nodes in {pgdata} on minion {minion}")


def _check_sync_standbys(cluster, nodes, problems):
    wanted = cluster.get("number_sync_standbys")
    if not _whole(wanted, 1, 100) or not nodes:
        return
    eligible = [n for n in nodes if n["replication_quorum"] is True and n["candidate_priority"] != 0]
    # One eligible node is the primary; the standbys must be one more than the
    # setting, so that losing one does not block writes.
    allowed = max(len(eligible) - 2, 0)
    if wanted > allowed:
        problems.append(
            f"pillar key pgfailover:number_sync_standbys is {wanted}; allowed: at most {allowed} with "
            f"{len(eligible)} node(s) in the replication quorum with a candidate priority above 0 "
            "(pg_auto_failover needs one standby more than the setting)"
        )


# -- security ---------------------------------------------------------------


def _check_auth(cluster, problems):
    auth = cluster.get("auth", "scram-sha-256")
    if cluster.get("skip_pg_hba") is True and "auth" in cluster:
        problems.append(
            "pillar keys pgfailover:auth and pgfailover:skip_pg_hba are both set; pg_autoctl takes one or "
            "the other: with skip_pg_hba you write pg_hba.conf yourself"
        )
    app = cluster.get("app") if isinstance(cluster.get("app"), dict) else {}
    cidrs = app.get("cidrs") if isinstance(app.get("cidrs"), list) else []
    for index, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            problems.append(
                f"pillar key pgfailover:app:cidrs:{index} is {cidr!r}; allowed: a network such as 10.0.0.0/24"
            )
    if auth == "trust":
        return
    passwords = cluster.get("passwords") if isinstance(cluster.get("passwords"), dict) else {}
    needed = ["autoctl_node", "replicator", "monitor"] + (["app"] if app.get("owner") else [])
    for role in needed:
        password = passwords.get(role)
        if not password:
            problems.append(
                f"pillar key pgfailover:passwords:{role} is missing; auth {auth} needs a password for it"
            )
        elif isinstance(password, str) and len(password) < MIN_PASSWORD_LENGTH:
            problems.append(
                f"pillar key pgfailover:passwords:{role} is too short ({len(password)} characters); allowed: "
                f"at least {MIN_PASSWORD_LENGTH}"
            )


def _check_ssl(cluster, problems):
    ssl = cluster.get("ssl")
    if not isinstance(ssl, dict) or "mode" not in ssl:
        problems.append(
            "pillar key pgfailover:ssl:mode is missing; pg_autoctl needs an explicit choice: "
            f"{', '.join(SSL_MODES)}"
        )
        return
    files = ("ca_file", "server_cert", "server_key")
    given = [key for key in files if ssl.get(key)]
    if ssl["mode"] == "ca" and len(given) != len(files):
        missing = [key for key in files if key not in given]
        problems.append(
            f"pillar key pgfailover:ssl has {', '.join(given) or 'no certificate file'} but not "
            f"{', '.join(missing)}; mode ca needs the CA, the server certificate and its key"
        )
    elif ssl["mode"] != "ca" and given:
        problems.append(
            f"pillar keys pgfailover:ssl:{', '.join(given)} are only used with mode ca "
            f"(mode is {ssl['mode']})"
        )


# -- packages ---------------------------------------------------------------


def _check_version(cluster, os_family, osmajorrelease, problems):
    version = cluster.get("postgresql_version", 15)
    if not _whole(version, 10, 99):
        return
    repo = cluster.get("repo") if isinstance(cluster.get("repo"), dict) else {}
    kind = repo.get("kind", "distribution")
    if kind == "rpm_file":
        offered, source = VENDOR_RPM_VERSIONS, "the vendor RPM"
    elif os_family == "Debian" and kind == "distribution":
        offered = DEBIAN_RELEASE_VERSIONS.get(osmajorrelease, ())
        source = f"Debian {osmajorrelease}'s own packages"
    else:
        offered, source = PGDG_VERSIONS, "PGDG packages"
    if version not in offered:
        problems.append(
            f"pillar key pgfailover:postgresql_version is {version}; {source} offer "
            f"{', '.join(map(str, offered)) or 'none'}"
        )


# -- failover timing --------------------------------------------------------


def _milliseconds(value):
    match = re.match(r"^\s*([0-9]+)\s*(ms|s|min)?\s*$", str(value))
    if not match or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * {"ms": 1, "s": 1000, "min": 60000}[match.group(2) or "ms"]


def _check_failover(cluster, profiles, problems):
    """A partitioned primary must have demoted itself before the monitor promotes another node."""
    failover = cluster.get("failover") if isinstance(cluster.get("failover"), dict) else {}
    profile = profiles.get(failover.get("profile", "default"))
    if not profile:
        return
    explicit = failover.get("monitor") or {}
    if not isinstance(explicit, dict):
        problems.append(f"pillar key pgfailover:failover:monitor is {explicit!r}; allowed: a mapping")
        return
    for key, value in explicit.items():
        if key not in profile["monitor"]:
            close = difflib.get_close_matches(str(key), list(profile["monitor"]), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(profile['monitor'])}"
            problems.append(f"pillar key pgfailover:failover:monitor:{key} is unknown{hint}")
        elif not _whole(value, 0, 86_400_000):
            problems.append(
                f"pillar key pgfailover:failover:monitor:{key} is {value!r}; allowed: whole milliseconds"
            )
    settings = (
        cluster.get("postgresql", {}).get("settings", {})
        if isinstance(cluster.get("postgresql"), dict)
        else {}
    )
    sender = (settings or {}).get("wal_sender_timeout", profile["wal_sender_timeout"])
    sender_ms = _milliseconds(sender)
    if sender_ms is None:
        problems.append(
            f"pillar key pgfailover:postgresql:settings:wal_sender_timeout is {sender!r}; allowed: a "
            "positive number of milliseconds, or one with ms, s or min"
        )
    partition = failover.get("network_partition_timeout") or profile["network_partition_timeout"]
    demote = explicit.get("primary_demote_timeout", profile["monitor"]["primary_demote_timeout"])
    if sender_ms is None or not _whole(partition, 1, 3600) or not _whole(demote, 0, 86_400_000):
        return
    if sender_ms + partition * 1000 + 1000 > demote:
        problems.append(
            f"a partitioned primary stays writable for wal_sender_timeout ({sender_ms} ms, pillar key "
            "pgfailover:postgresql:settings:wal_sender_timeout) plus network_partition_timeout "
            f"({partition} s, pillar key pgfailover:failover:network_partition_timeout); with 1 s of margin "
            "that must not "
            f"exceed primary_demote_timeout ({demote} ms, pillar key "
            "pgfailover:failover:monitor:primary_demote_timeout), or two nodes could be writable at once"
        )


# -- client entry point -----------------------------------------------------


def _section(cluster, key):
    return cluster.get(key) if isinstance(cluster.get(key), dict) else {}


def _check_haproxy(cluster, nodes, problems):
    """HAProxy's ports are its own, and it needs the nodes' health endpoints."""
    haproxy, health = _section(cluster, "haproxy"), _section(cluster, "health")
    minions = haproxy.get("minions") if isinstance(haproxy.get("minions"), list) else []
    if minions and health.get("enabled") is False:
        problems.append(
            "pillar key pgfailover:health:enabled is false but pgfailover:haproxy:minions lists "
            f"{', '.join(map(str, minions))}; HAProxy routes by the nodes' health endpoints: enable them"
        )
    enabled = health.get("enabled") if health.get("enabled") is not None else bool(minions)
    health_port = health.get("port", 8008)
    taken = {}  # (minion, port) -> what listens there
    monitor = _section(cluster, "monitor")
    if monitor.get("minion"):
        taken[(monitor["minion"], monitor.get("port", 5431))] = "the monitor"
    for node in nodes:
        taken.setdefault((node["minion"], node["port"]), f"node {node['name']}")
    for index, node in enumerate(cluster.get("nodes") or [] if enabled else []):
        if not isinstance(node, dict) or not node.get("name"):
            continue
        where = (node.get("minion", node["name"]), node.get("health_port", health_port))
        if where in taken:
            problems.append(
                f"pillar key pgfailover:nodes:{index}:health_port (or pgfailover:health:port) puts node "
                f"{node['name']}'s health endpoint on port {where[1]} of minion {where[0]}, already used by "
                f"{taken[where]}; give it its own port"
            )
        taken[where] = f"the health endpoint of node {node['name']}"
    ports = {
        key: haproxy.get(key, default)
        for key, default in (("read_write_port", 5000), ("read_only_port", 5001), ("stats_port", 7000))
        if haproxy.get(key, default) is not None
    }
    for port in _duplicates(ports.values()):
        keys = [f"pgfailover:haproxy:{key}" for key, value in ports.items() if value == port]
        problems.append(f"pillar keys {' and '.join(keys)} are both {port}; each needs its own port")
    for minion in minions:
        for key, port in ports.items():
            if (minion, port) in taken:
                problems.append(
                    f"pillar key pgfailover:haproxy:{key} is {port}, already used on minion {minion} by "
                    f"{taken[(minion, port)]}; choose another port"
                )
