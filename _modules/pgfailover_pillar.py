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
MONITOR = {"minion": "name", "hostname": "host", "port": "port", "pgdata": "path", "metrics_port": "port"}
NODE = {
    "name": "name",
    "minion": "name",
    "hostname": "host",
    "port": "port",
    "pgdata": "path",
    "candidate_priority": "priority",
    "replication_quorum": "bool",
    "health_port": "port",
    "metrics_port": "port",
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
    "formations": "any",
    "dbname": "name",
    "auth": "auth",
    "ssl": {"mode": "ssl_mode", "ca_file": "path", "server_cert": "path", "server_key": "path"},
    "monitor": "monitor",
    "nodes": "nodes",
    "number_sync_standbys": "sync",
    "app": {"owner": "owner", "cidrs": "cidrs"},
    "postgresql": {"settings": "settings"},
    "failover": {"profile": "profile", "monitor": "any", "network_partition_timeout": "seconds"},
    "socket_dir": "path",
    "health": {
        "enabled": "optional_bool",
        "bind": "host",
        "port": "port",
        "replica_max_lag_bytes": "bytes",
        "replica_max_silence": "seconds",
        "isolation_timeout": "isolation_timeout",
        "program": "path",
        "config_dir": "path",
        "dbuser": "name",
        "connection_limit": "count",
        "workers": "count",
        "cache_ms": "cache_ms",
        "reserved_sources": "optional_hosts",
        "reserved_workers": "count",
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
    "backup": {
        "minion": "name",
        "hostname": "host",
        "path": "path",
        "retention": {"full": "retention", "diff": "retention"},
        "schedule": {"full": "calendar", "diff": "calendar"},
        "compress": {"type": "compress_type", "level": "compress_level"},
        "archive_timeout": "archive_timeout",
        "encryption": "bool",
        "from_standby": "bool",
        "process_max": "count",
        "config_file": "path",
        "log_path": "path",
        "ssh_command": "path",
        "pgbackrest": "path",
    },
    "metrics": {
        "enabled": "bool",
        "bind": "host",
        "port": "port",
        "dbuser": "name",
        "connection_limit": "count",
        "config_dir": "path",
        "web_config": "web_config",
    },
    "tofs": {"files_switch": "grain_names", "source_files": "source_files"},
    "clean": {
        "remove_data": "bool",
        "remove_packages": "bool",
        "allow_last_standby": "bool",
        "formation": "name",
    },
    "passwords": {
        "autoctl_node": "secret",
        "replicator": "secret",
        "monitor": "secret",
        "app": "secret",
        "backup": "secret",
    },
}
# What each formation of pgfailover:formations may set (the top-level keys of
# the same names describe formation pgfailover:formation).
FORMATION = {
    "dbname": "name",
    "nodes": "any",
    "number_sync_standbys": "sync",
    "app": {"owner": "owner", "cidrs": "cidrs"},
    "passwords": {"app": "secret"},
    "haproxy": {"read_write_port": "port", "read_only_port": "port"},
}
# No trust: any local user could connect as any role (the formula hardens
# initdb's trust lines with the cluster's method).
AUTH_METHODS = ("scram-sha-256", "md5", "password")
# Where certificates come from (pillar ssl:mode); not libpq's sslmode.
CERTIFICATE_SOURCES = ("self-signed", "ca", "none")
REPO_KINDS = ("distribution", "url", "rpm_file")
PROFILES = ("default", "fast")
COMPRESS_TYPES = ("lz4", "zst", "gz", "bz2", "none")
# The backup section writes these (archive on every node, restore by pgBackRest).
BACKUP_SETTINGS = ("archive_mode", "archive_command", "archive_library", "archive_timeout", "restore_command")
MIN_PASSWORD_LENGTH = 12
# The exporter-toolkit's web configuration file (postgres_exporter --web.config.file).
WEB_CONFIG_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
# PostgreSQL major versions each package source offers.
DEBIAN_RELEASE_VERSIONS = {"11": (13,), "12": (15,), "13": (17,)}
PGDG_VERSIONS = (13, 14, 15, 16, 17)
VENDOR_RPM_VERSIONS = (13,)
# Patterns are used with fullmatch only: "$" would accept a trailing newline.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# Paths reach file states and unit files: no shell or unit-file syntax in them.
_PATH = re.compile(r"/[A-Za-z0-9_.@+,=/-]{0,4095}")
_GRAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# A file name under the formula's files/ (TOFS): no absolute path, no '..'.
_RELATIVE = re.compile(r"(?!.*\.\.)[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*")
_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_.]{0,62}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A systemd calendar expression (OnCalendar=), such as "Sun *-*-* 01:00:00".
_CALENDAR = re.compile(r"[A-Za-z0-9*:,./~ -]{1,100}")
# Roles the application owner must not be: the superuser, the service user,
# PostgreSQL's predefined roles and pg_auto_failover's internal ones.
RESERVED_ROLES = ("postgres", "autoctl_node")
RESERVED_ROLE_PREFIXES = ("pg_", "pgautofailover_", "pgfailover_")
DEFAULT_DATA_ROOT = "/var/lib/postgresql/pgaf"
DEFAULT_SERVICE_USER = "postgres"


def __virtual__():
    return __virtualname__


def is_name(value):
    """
    True when ``value`` may name a node, a formation, a database or a role:
    letters, digits, ``_``, ``.`` and ``-``, first a letter or ``_``, at most 63
    characters (PostgreSQL's identifier length). The one rule for names: the
    pillar validator checks the pillar with it and the execution module its
    arguments.

    CLI Example:

    .. code-block:: bash

        salt '*' pgfailover_pillar.is_name billing
    """
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def validate(cluster=None, parameters=None, os_family=None, osmajorrelease=None):
    """
    Every problem of a ``pgfailover`` pillar, as sentences naming the pillar
    key; an empty list when it is valid. Without ``cluster``, this minion's
    pillar. ``parameters`` are the formula's resolved parameters
    (``parameters/defaults.yaml`` < OS family < ``lookup``): the failover
    profiles, ``data_root`` and the service ``user``. The OS defaults come
    from this minion's grains.

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
    parameters = parameters if isinstance(parameters, dict) else {}
    problems = []
    _check_mapping("pgfailover", cluster, SCHEMA, problems)
    _check_monitor(cluster, problems)
    data_root = parameters.get("data_root", DEFAULT_DATA_ROOT)
    nodes = _check_nodes(cluster.get("nodes"), "pgfailover:nodes", problems, data_root)
    _check_sync_standbys(
        cluster.get("number_sync_standbys"), "pgfailover:number_sync_standbys", nodes, problems
    )
    every_node = nodes + _check_formations(cluster, problems, data_root)
    _check_addresses(cluster, every_node, problems)
    _check_data_directories(cluster, every_node, problems, data_root)
    _check_auth(cluster, problems)
    _check_settings(cluster, problems)
    _check_owner(cluster, problems, parameters.get("user", DEFAULT_SERVICE_USER))
    _check_ssl(cluster, problems)
    # On the master (orchestrations) the grains are the master's, not the
    # hosts': each host checks its packages when it renders the formula.
    if globals().get("__opts__", {}).get("__role") != "master":
        _check_version(cluster, os_family, osmajorrelease, problems)
    _check_failover(cluster, parameters.get("failover_profiles") or {}, problems)
    _check_haproxy(cluster, every_node, problems)
    _check_backup(cluster, nodes, problems)
    _check_metrics(cluster, nodes, problems)
    return problems


# -- shape ------------------------------------------------------------------


def _check_mapping(path, value, schema, problems):
    if not isinstance(value, dict):
        secret = path.endswith(":passwords")
        shown = f"a {type(value).__name__}" if secret else repr(value)
        problems.append(f"pillar key {path} must be a mapping, not {shown}")
        return
    for key, item in value.items():
        spec = schema.get(key) if isinstance(key, str) else None
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
        problems.append(f"pillar key {path} is {_shown(value, kind)}; allowed: {problem}")


def _shown(value, kind):
    """How a refusal shows a value: a secret only by its type, never by its content."""
    if kind == "secret":
        return f"a {type(value).__name__} (value not shown)"
    return repr(value)


def _strings_matching(value, pattern):
    """True when ``value`` is a list of strings that each match ``pattern`` whole."""
    return isinstance(value, list) and all(isinstance(i, str) and pattern.fullmatch(i) for i in value)


def _whole(value, low, high):
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


CHECKS = {
    "name": lambda v: None if is_name(v) else "letters, digits, _ . - (63 at most)",
    "owner": lambda v: _owner_problem(v),
    "host": lambda v: None if isinstance(v, str) and _HOST.fullmatch(v) else "a host name or IP address",
    "port": lambda v: None if _whole(v, 1, 65535) else "a port number, 1 to 65535",
    "path": lambda v: (
        None
        if isinstance(v, str) and _PATH.fullmatch(v) and ".." not in v.split("/")
        else "an absolute path of letters, digits and _ . @ + , = - / (no '..' component)"
    ),
    "priority": lambda v: None if _whole(v, 0, 100) else "a whole number from 0 to 100",
    "bool": lambda v: None if isinstance(v, bool) else "true or false",
    "text": lambda v: (
        None if isinstance(v, str) and v and not _CONTROL.search(v) else "a non-empty string on one line"
    ),
    "list": lambda v: (
        None if isinstance(v, list) and all(isinstance(i, str) for i in v) else "a list of strings"
    ),
    "version": lambda v: None if _whole(v, 10, 99) else "a PostgreSQL major version such as 15",
    "repo_kind": lambda v: None if v in REPO_KINDS else ", ".join(REPO_KINDS),
    "auth": lambda v: None if v in AUTH_METHODS else ", ".join(AUTH_METHODS),
    "ssl_mode": lambda v: None if v in CERTIFICATE_SOURCES else ", ".join(CERTIFICATE_SOURCES),
    "profile": lambda v: None if v in PROFILES else ", ".join(PROFILES),
    "seconds": lambda v: None if v is None or _whole(v, 1, 3600) else "whole seconds, 1 to 3600",
    "sync": lambda v: None if v is None or _whole(v, 0, 100) else "null or a whole number from 0",
    "secret": lambda v: (
        None
        if isinstance(v, str) and not _CONTROL.search(v)
        else "a string without control characters such as a newline (quote it in YAML; keep it in an "
        "encrypted renderer)"
    ),
    "cidrs": lambda v: None if isinstance(v, list) else "a list of networks such as 10.0.0.0/24",
    "settings": lambda v: None if isinstance(v, dict) else "a mapping of PostgreSQL setting names to values",
    "nodes": lambda v: None if isinstance(v, list) else "a list of nodes, each with a name",
    "optional_bool": lambda v: None if v is None or isinstance(v, bool) else "true, false or null (auto)",
    "isolation_timeout": lambda v: (
        None if v is None or _whole(v, 0, 3600) else "null (automatic), 0 (never) or whole seconds up to 3600"
    ),
    "optional_port": lambda v: None if v is None or _whole(v, 1, 65535) else "null or a port, 1 to 65535",
    "names": lambda v: None if _strings_matching(v, _NAME) else "a list of minion IDs",
    "optional_hosts": lambda v: (
        None
        if v is None or (isinstance(v, list) and all(isinstance(i, str) and _HOST.fullmatch(i) for i in v))
        else "null or a list of host names or IP addresses"
    ),
    "milliseconds": lambda v: None if _whole(v, 100, 86_400_000) else "milliseconds, 100 to 86400000",
    "count": lambda v: None if _whole(v, 1, 100) else "a whole number from 1 to 100",
    "cache_ms": lambda v: None if _whole(v, 0, 5000) else "milliseconds, 0 to 5000",
    "maxconn": lambda v: None if _whole(v, 1, 1_000_000) else "a whole number from 1 to 1000000",
    "bytes": lambda v: None if _whole(v, 0, 2**40) else "a number of bytes, 0 to 2^40",
    "retention": lambda v: None if _whole(v, 1, 9999) else "a whole number from 1 to 9999",
    "calendar": lambda v: (
        None
        if v is None or (isinstance(v, str) and _CALENDAR.fullmatch(v))
        else "null (no timer) or a systemd calendar expression such as 'Sun *-*-* 01:00:00'"
    ),
    "compress_type": lambda v: None if v in COMPRESS_TYPES else ", ".join(COMPRESS_TYPES),
    "compress_level": lambda v: None if v is None or _whole(v, 0, 22) else "null or a level from 0 to 22",
    "archive_timeout": lambda v: None if _whole(v, 1, 3600) else "whole seconds, 1 to 3600",
    "web_config": lambda v: (
        None
        if isinstance(v, dict) and set(v) <= set(WEB_CONFIG_KEYS)
        else f"a mapping of the exporter's web configuration keys: {', '.join(WEB_CONFIG_KEYS)}"
    ),
    "grain_names": lambda v: (
        None if _strings_matching(v, _GRAIN) else "a list of grain names such as id, os_family"
    ),
    "source_files": lambda v: (
        None
        if isinstance(v, dict) and all(_strings_matching(names, _RELATIVE) for names in v.values())
        else "a mapping of a formula file's name to a list of file names under files/ tried before it"
    ),
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


def _check_nodes(nodes, where, problems, data_root):
    """
    The nodes listed at pillar key ``where`` with the formula's defaults
    applied (map.jinja applies the same ones), each value of the type its
    check allows; problems for the others.
    """
    if not isinstance(nodes, list) or not nodes:
        problems.append(f"pillar key {where} is missing or empty: list the PostgreSQL nodes by name")
        return []
    good = []
    for index, node in enumerate(nodes):
        path = f"{where}:{index}"
        if not isinstance(node, dict):
            problems.append(f"pillar key {path} is {node!r}; allowed: a mapping with at least a name")
            continue
        _check_mapping(path, node, NODE, problems)
        if not node.get("name"):
            problems.append(f"pillar key {path}:name is missing: every node needs a name")
            continue
        if any(CHECKS[NODE[key]](node[key]) for key in NODE if key in node):
            continue  # refused above; its values cannot be compared with the others'
        minion = node.get("minion", node["name"])
        good.append(
            {
                "name": node["name"],
                "minion": minion,
                "hostname": node.get("hostname", minion),
                "port": node.get("port", 5432),
                "pgdata": node.get("pgdata", f"{data_root}/{node['name']}"),
                "candidate_priority": node.get("candidate_priority", 50),
                "replication_quorum": node.get("replication_quorum", True),
                "health_port": node.get("health_port"),
                "path": path,
            }
        )
    return good


def _valid_monitor(cluster):
    """The monitor's mapping when each of its values passed its check, else {}."""
    monitor = cluster.get("monitor")
    if not isinstance(monitor, dict) or any(
        key not in MONITOR or CHECKS[MONITOR[key]](value) for key, value in monitor.items()
    ):
        return {}
    return monitor


def _duplicates(values):
    seen, twice = set(), []
    for value in values:
        if value in seen and value not in twice:
            twice.append(value)
        seen.add(value)
    return twice


def _check_addresses(cluster, nodes, problems):
    for name in _duplicates(node["name"] for node in nodes):
        problems.append(
            f"pillar key pgfailover:nodes (or pgfailover:formations:*:nodes) names {name} more than once; "
            "node names are unique, across formations too (each names its unit and its data directory)"
        )
    monitor = _valid_monitor(cluster)
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


def _check_data_directories(cluster, nodes, problems, data_root):
    """Two instances of one minion never share a data directory, nor nest one in the other."""
    monitor = _valid_monitor(cluster)
    instances = [(node["minion"], node["pgdata"], f"node {node['name']}") for node in nodes]
    if monitor.get("minion"):
        instances.append((monitor["minion"], monitor.get("pgdata", f"{data_root}/monitor"), "the monitor"))
    for index, (minion, pgdata, what) in enumerate(instances):
        for other_minion, other_pgdata, other in instances[index + 1 :]:
            if minion == other_minion and _nested(pgdata, other_pgdata):
                problems.append(
                    f"pillar keys pgfailover:nodes / pgfailover:monitor (pgdata) put {what} in {pgdata} and "
                    f"{other} in {other_pgdata} on minion {minion}; each instance needs a data directory of "
                    "its own (clean:remove_data of one would remove the other's data)"
                )


def _nested(first, second):
    """True when the two paths are the same directory or one lies inside the other."""
    first, second = first.rstrip("/") + "/", second.rstrip("/") + "/"
    return first.startswith(second) or second.startswith(first)


def _check_formations(cluster, problems, data_root):
    """
    The formations of pgfailover:formations, each on the same monitor as the
    top-level one; returns their nodes (with defaults), each tagged with its
    formation, for the checks across every node.
    """
    formations = cluster.get("formations")
    if formations is None:
        return []
    if not isinstance(formations, dict) or not formations:
        problems.append(
            "pillar key pgfailover:formations must be a mapping of formation name to its dbname, nodes, "
            "number_sync_standbys, app and passwords"
        )
        return []
    top = cluster.get("formation", "default")
    nodes = []
    for name, formation in formations.items():
        path = f"pgfailover:formations:{name}"
        if not is_name(name):
            problems.append(
                f"pillar key pgfailover:formations has a formation named {name!r}; "
                f"allowed: {CHECKS['name'](name)}"
            )
            continue
        if name == top:
            problems.append(
                f"pillar key {path} names the top-level formation {top} (pgfailover:formation) again; "
                "its nodes and settings are the top-level keys"
            )
            continue
        if not isinstance(formation, dict):
            problems.append(f"pillar key {path} must be a mapping, not {formation!r}")
            continue
        _check_mapping(path, formation, FORMATION, problems)
        found = _check_nodes(formation.get("nodes"), f"{path}:nodes", problems, data_root)
        _check_sync_standbys(
            formation.get("number_sync_standbys"), f"{path}:number_sync_standbys", found, problems
        )
        app = _section(formation, "app")
        _check_cidrs(app.get("cidrs"), f"{path}:app:cidrs", problems)
        password = _section(formation, "passwords").get("app")
        if app.get("owner") and not password:
            problems.append(
                f"pillar key {path}:passwords:app is missing: the application owner {app['owner']} of "
                f"formation {name} needs a password"
            )
        elif isinstance(password, str) and len(password) < MIN_PASSWORD_LENGTH:
            problems.append(
                f"pillar key {path}:passwords:app is too short ({len(password)} characters); allowed: "
                f"at least {MIN_PASSWORD_LENGTH}"
            )
        nodes += [dict(node, formation=name) for node in found]
    if cluster.get("backup"):
        problems.append(
            "pillar keys pgfailover:formations and pgfailover:backup are both set; backup covers one "
            "formation so far: describe the other formations in another cluster's pillar, or leave "
            "pgfailover:backup out"
        )
    return nodes


def _check_sync_standbys(wanted, where, nodes, problems):
    if not _whole(wanted, 1, 100) or not nodes:
        return
    eligible = [n for n in nodes if n["replication_quorum"] is True and n["candidate_priority"] != 0]
    # One eligible node is the primary; the standbys must be one more than the
    # setting, so that losing one does not block writes.
    allowed = max(len(eligible) - 2, 0)
    if wanted > allowed:
        problems.append(
            f"pillar key {where} is {wanted}; allowed: at most {allowed} with "
            f"{len(eligible)} node(s) in the replication quorum with a candidate priority above 0 "
            "(pg_auto_failover needs one standby more than the setting)"
        )


# -- security ---------------------------------------------------------------


def _owner_problem(value):
    if not is_name(value):
        return "letters, digits, _ . - (63 at most)"
    if value in RESERVED_ROLES or value.startswith(RESERVED_ROLE_PREFIXES):
        return (
            "an application role of its own, not the superuser, the service user, "
            f"{', '.join(RESERVED_ROLES[1:])}, nor a role named "
            + " or ".join(prefix + "*" for prefix in RESERVED_ROLE_PREFIXES)
        )
    return None


def _check_owner(cluster, problems, service_user):
    """The service user is a superuser by peer authentication: the application must not own it."""
    owner = _section(cluster, "app").get("owner")
    if isinstance(owner, str) and owner == service_user and not _owner_problem(owner):
        problems.append(
            f"pillar key pgfailover:app:owner is {owner!r}; allowed: an application role of its own, not "
            f"the service user {service_user} (a superuser)"
        )


def _check_settings(cluster, problems):
    """Settings become lines of a configuration file: each name and value must stay one setting."""
    settings = _section(cluster, "postgresql").get("settings")
    if not isinstance(settings, dict):
        return
    for name, value in settings.items():
        path = f"pillar key pgfailover:postgresql:settings:{name}"
        if not isinstance(name, str) or not _SETTING_NAME.fullmatch(name):
            problems.append(
                f"pillar key pgfailover:postgresql:settings has a setting named {name!r}; allowed: "
                "a PostgreSQL setting name (lower-case letters, digits, _ and ., starting with a letter or _)"
            )
        elif not isinstance(value, (str, int, float)):
            problems.append(f"{path} is {value!r}; allowed: a string, a number, true or false")
        elif isinstance(value, str) and _CONTROL.search(value):
            problems.append(f"{path} is {value!r}; allowed: a value on one line, without control characters")


def _check_cidrs(cidrs, where, problems):
    for index, cidr in enumerate(cidrs if isinstance(cidrs, list) else []):
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            problems.append(f"pillar key {where}:{index} is {cidr!r}; allowed: a network such as 10.0.0.0/24")


def _check_auth(cluster, problems):
    auth = cluster.get("auth", "scram-sha-256")
    app = _section(cluster, "app")
    _check_cidrs(app.get("cidrs"), "pgfailover:app:cidrs", problems)
    passwords = _section(cluster, "passwords")
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
            f"{', '.join(CERTIFICATE_SOURCES)}"
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
    failover = _section(cluster, "failover")
    profile = (
        profiles.get(failover.get("profile", "default"))
        if failover.get("profile", "default") in PROFILES
        else None
    )
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
    settings = _section(_section(cluster, "postgresql"), "settings")
    sender = settings.get("wal_sender_timeout", profile["wal_sender_timeout"])
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
    """
    HAProxy's ports are its own (each formation has its own pair), and it
    needs the nodes' health endpoints, each on a port of its own.
    """
    haproxy, health = _section(cluster, "haproxy"), _section(cluster, "health")
    minions = haproxy.get("minions") if not CHECKS["names"](haproxy.get("minions")) else []
    if minions and health.get("enabled") is False:
        problems.append(
            "pillar key pgfailover:health:enabled is false but pgfailover:haproxy:minions lists "
            f"{', '.join(map(str, minions))}; HAProxy routes by the nodes' health endpoints: enable them"
        )
    enabled = health.get("enabled") if health.get("enabled") is not None else bool(minions)
    health_port = health.get("port", 8008)
    if CHECKS["port"](health_port):
        return  # refused by its own check
    taken = {}  # (minion, port) -> what listens there
    monitor = _valid_monitor(cluster)
    if monitor.get("minion"):
        taken[(monitor["minion"], monitor.get("port", 5431))] = "the monitor"
    for node in nodes:
        taken.setdefault((node["minion"], node["port"]), f"node {node['name']}")
    for node in nodes if enabled else []:
        where = (node["minion"], node["health_port"] or health_port)
        if where in taken:
            problems.append(
                f"pillar key {node['path']}:health_port (or pgfailover:health:port) puts node "
                f"{node['name']}'s health endpoint on port {where[1]} of minion {where[0]}, already used by "
                f"{taken[where]}; give it its own port"
            )
        taken[where] = f"the health endpoint of node {node['name']}"
    ports = {
        f"pgfailover:haproxy:{key}": haproxy.get(key, default)
        for key, default in (("read_write_port", 5000), ("read_only_port", 5001), ("stats_port", 7000))
        if haproxy.get(key, default) is not None and not CHECKS["optional_port"](haproxy.get(key, default))
    }
    formations = cluster.get("formations") if isinstance(cluster.get("formations"), dict) else {}
    for name, formation in formations.items() if minions else []:
        given = formation.get("haproxy") if isinstance(formation, dict) else None
        given = given if isinstance(given, dict) else {}
        for key in ("read_write_port", "read_only_port"):
            if key not in given:
                problems.append(
                    f"pillar key pgfailover:formations:{name}:haproxy:{key} is missing: with "
                    "pgfailover:haproxy:minions every formation needs HAProxy ports of its own"
                )
            elif not CHECKS["port"](given[key]):
                ports[f"pgfailover:formations:{name}:haproxy:{key}"] = given[key]
    for port in _duplicates(ports.values()):
        keys = [key for key, value in ports.items() if value == port]
        problems.append(f"pillar keys {' and '.join(keys)} are both {port}; each needs its own port")
    for minion in minions:
        for key, port in ports.items():
            if (minion, port) in taken:
                problems.append(
                    f"pillar key {key} is {port}, already used on minion {minion} by "
                    f"{taken[(minion, port)]}; choose another port"
                )


def _check_backup(cluster, nodes, problems):
    """The repository host is its own, encryption has its passphrase, archiving is the section's."""
    if "backup" not in cluster:
        return
    backup = _section(cluster, "backup")
    minion = backup.get("minion")
    if not minion:
        problems.append(
            "pillar key pgfailover:backup:minion is missing: name the repository host's minion (a dedicated "
            "one, or the monitor's)"
        )
    elif minion in {node["minion"] for node in nodes}:
        problems.append(
            f"pillar key pgfailover:backup:minion is {minion!r}, which runs a PostgreSQL node; allowed: a "
            "dedicated minion or the monitor's (backups must outlive any node's host)"
        )
    if backup.get("encryption") is True:
        passphrase = _section(cluster, "passwords").get("backup")
        if not passphrase:
            problems.append(
                "pillar key pgfailover:passwords:backup is missing; backup:encryption true encrypts the "
                "repository with it"
            )
        elif isinstance(passphrase, str) and len(passphrase) < 20:
            problems.append(
                f"pillar key pgfailover:passwords:backup is too short ({len(passphrase)} characters); "
                "allowed: at least 20 for a repository passphrase"
            )
    settings = _section(cluster, "postgresql").get("settings")
    for name in sorted(set(settings or {}) & set(BACKUP_SETTINGS)) if isinstance(settings, dict) else []:
        problems.append(
            f"pillar key pgfailover:postgresql:settings:{name} is set, but the backup section writes it "
            "(archiving to pgBackRest on every node); remove it, or use backup:archive_timeout"
        )


def _check_metrics(cluster, nodes, problems):
    """Each instance's exporter listens on a port no other listener of its minion uses."""
    if "metrics" not in cluster:
        return
    metrics = _section(cluster, "metrics")
    default = metrics.get("port", 9187)
    if CHECKS["port"](default):
        return  # refused by its own check
    pillar_nodes = {
        n.get("name"): (i, n) for i, n in enumerate(cluster.get("nodes") or []) if isinstance(n, dict)
    }
    health = _section(cluster, "health")
    health_port = health.get("port", 8008)
    # The endpoints run when health:enabled says so, by default when HAProxy is used (as map.jinja decides).
    health_on = (
        health.get("enabled")
        if health.get("enabled") is not None
        else bool(_section(cluster, "haproxy").get("minions"))
    )
    listeners = {}  # (minion, port) -> what listens there
    exporters = []
    monitor = _valid_monitor(cluster)
    if monitor.get("minion"):
        listeners[(monitor["minion"], monitor.get("port", 5431))] = "the monitor's PostgreSQL"
        exporters.append((monitor["minion"], monitor.get("metrics_port", default), "pgfailover:monitor"))
    for node in nodes:
        index, pillar_node = pillar_nodes[node["name"]]
        listeners[(node["minion"], node["port"])] = f"node {node['name']}'s PostgreSQL"
        if health_on:
            listeners[(node["minion"], pillar_node.get("health_port", health_port))] = (
                f"node {node['name']}'s health endpoint"
            )
        exporters.append(
            (node["minion"], pillar_node.get("metrics_port", default), f"pgfailover:nodes:{index}")
        )
    for minion, port, key in exporters:
        if (minion, port) in listeners:
            problems.append(
                f"pillar key {key}:metrics_port (or pgfailover:metrics:port) gives the exporter port "
                f"{port} on minion {minion}, where {listeners[(minion, port)]} listens; allowed: a free "
                f"port (set {key}:metrics_port)"
            )
        listeners[(minion, port)] = f"the exporter of {key}"
