"""
Manage pg_auto_failover monitors and PostgreSQL nodes through ``pg_autoctl``.

Every call runs ``pg_autoctl`` as the service user with a fixed ``HOME`` and
``XDG_CONFIG_HOME`` / ``XDG_DATA_HOME`` / ``XDG_RUNTIME_DIR``, so the files that
``pg_autoctl`` keeps (configuration, state, pid) are always found where the
service unit keeps them. JSON is read from standard output only; ``pg_autoctl``
logs to standard error.

Configuration
-------------
Each function takes the connection options below as keyword arguments; when an
option is not given it is read with ``config.get("pgfailover:<option>")``, so
minion configuration, grains and pillar all work (the formula sets a
``pgfailover`` grain for each host):

user
    service user that owns the instances (``postgres``)
home
    that user's HOME, where pg_autoctl keeps its files (``/var/lib/postgresql``)
runtime_dir
    ``XDG_RUNTIME_DIR`` for pid and lock files (``/run/pgfailover``)
pg_autoctl
    path of the pg_autoctl binary (``/usr/bin/pg_autoctl``)
bindir
    PostgreSQL's bin directory, where pg_ctl and psql live
    (``/usr/lib/postgresql/15/bin``)
pgdata
    data directory of the local instance the call is about
monitor_uri
    monitor URI, for calls made from a host without a local instance; it must
    not contain a password (put the password in the service user's ``.pgpass``)
formation
    formation name (``default``)

Secrets never go on a command line: passwords are written to files the
service user owns, or sent to ``psql`` on standard input.

Bad arguments raise ``SaltInvocationError`` before anything runs; a failing
``pg_autoctl`` raises ``CommandExecutionError`` with its own ERROR and FATAL
lines, passwords masked.
"""

import base64
import configparser
import hashlib
import hmac
import json
import logging
import os
import pwd
import re
import stringprep
import struct
import time
import unicodedata

import salt.utils.data
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "pgfailover"

CONNECTION_DEFAULTS = {
    "user": "postgres",
    "home": "/var/lib/postgresql",
    "runtime_dir": "/run/pgfailover",
    "pg_autoctl": "/usr/bin/pg_autoctl",
    "bindir": "/usr/lib/postgresql/15/bin",
    "pgdata": None,
    "monitor_uri": None,
    "formation": "default",
}

STATES = frozenset(
    (
        "init", "single", "wait_primary", "primary", "apply_settings",
        "prepare_maintenance", "wait_maintenance", "maintenance", "draining",
        "demote_timeout", "demoted", "wait_standby", "catchingup", "secondary",
        "prepare_promotion", "stop_replication", "report_lsn", "fast_forward",
        "join_secondary", "dropped",
    )
)  # fmt: skip
WRITABLE_STATES = frozenset(("single", "wait_primary", "primary", "apply_settings"))

AUTH_METHODS = ("trust", "scram-sha-256", "md5", "password", "cert", "reject")
# The role pg_autoctl creates for replication; its name is fixed (upstream issue 1093).
REPLICATOR = "pgautofailover_replicator"
# libpq's sslmode values (pg_autoctl --ssl-mode, client URIs).
LIBPQ_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

MONITOR_SETTINGS = (
    "health_check_period",
    "health_check_timeout",
    "health_check_max_retries",
    "health_check_retry_delay",
    "node_considered_unhealthy_timeout",
    "primary_demote_timeout",
    "startup_grace_period",
    "promote_wal_log_threshold",
)

SECRET_MASK = "******"
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]+):[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def __virtual__():
    binary = _config("pg_autoctl")
    if os.access(binary, os.X_OK):
        return __virtualname__
    return (
        False,
        f"pgfailover: pg_autoctl not found at {binary}; install pg-auto-failover-cli "
        "(Debian, Ubuntu) or pg_auto_failover_<MAJOR> (PGDG), or set "
        "pgfailover:pg_autoctl to its path",
    )


# ---------------------------------------------------------------------------
# Connection options, environment, running pg_autoctl
# ---------------------------------------------------------------------------


def _config(option, given=None):
    """Return ``given`` or the configured value of ``pgfailover:<option>``."""
    if given is not None:
        return given
    return __salt__["config.get"](f"pgfailover:{option}", CONNECTION_DEFAULTS[option])


def _connection(kwargs):
    """
    Resolve the connection options of a call; reject unknown keyword arguments.

    Salt adds ``__pub_*`` keys to the keyword arguments of a CLI call: they are
    ignored.
    """
    unknown = sorted(k for k in kwargs if k not in CONNECTION_DEFAULTS and not k.startswith("__"))
    if unknown:
        raise SaltInvocationError(
            f"unknown argument(s) {', '.join(unknown)}; connection options are "
            f"{', '.join(CONNECTION_DEFAULTS)}"
        )
    conn = {opt: _config(opt, kwargs.get(opt)) for opt in CONNECTION_DEFAULTS}
    _check_no_password_in_uri("monitor_uri", conn["monitor_uri"])
    conn["given"] = frozenset(opt for opt in CONNECTION_DEFAULTS if kwargs.get(opt) is not None)
    return conn


def _check_no_password_in_uri(argument, uri):
    if uri and (_URI_PASSWORD.search(uri) or _KEYWORD_PASSWORD.search(uri)):
        raise SaltInvocationError(
            f"{argument} must not contain a password (it would appear on a command line "
            "and in logs); put the password in the service user's .pgpass instead"
        )


def _environment(conn):
    home = conn["home"]
    return {
        "HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "XDG_DATA_HOME": os.path.join(home, ".local", "share"),
        "XDG_RUNTIME_DIR": conn["runtime_dir"],
        "PGPASSFILE": os.path.join(home, ".pgpass"),
        # PostgreSQL's own bindir first: never a stray pg_ctl from /usr/local/bin.
        "PATH": f"{conn['bindir']}:/usr/sbin:/usr/bin:/sbin:/bin",
    }


def redact(text, secrets=()):
    """
    Mask passwords in ``text``: URI passwords, ``password=...`` keywords and
    every string in ``secrets``.

    CLI Example:

    .. code-block:: bash

        salt '*' pgfailover.redact 'postgres://autoctl_node:s3cret@mon/pg_auto_failover'
    """
    if not text:
        return text
    text = _URI_PASSWORD.sub(rf"\1:{SECRET_MASK}@", text)
    text = _KEYWORD_PASSWORD.sub(rf"\1{SECRET_MASK}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, SECRET_MASK)
    return text


def _error_lines(stderr):
    """The ERROR and FATAL lines of pg_autoctl's log output, or its last line."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if " ERROR " in line or " FATAL " in line]
    return errors or lines[-1:]


def _run(conn, args, *, json_output=False, timeout=None):
    """
    Run ``pg_autoctl ARGS`` as the service user; parse stdout as JSON if asked;
    stop it after ``timeout`` seconds when given.
    """
    argv = [conn["pg_autoctl"], *args]
    if json_output:
        # Options go before positional values (pg_autoctl set node ... <value>).
        first_option = next((i for i, arg in enumerate(argv) if arg.startswith("--")), len(argv))
        argv.insert(first_option, "--json")
    result = _run_as_service_user(conn, argv, timeout=timeout)
    if result["retcode"] != 0:
        raise CommandExecutionError(
            redact(
                f"pg_autoctl {' '.join(args[:2])} failed (exit {result['retcode']}): "
                + " | ".join(_error_lines(result["stderr"]))
            )
        )
    if not json_output:
        return result
    try:
        return json.loads(result["stdout"])
    except ValueError as exc:
        raise CommandExecutionError(
            redact(
                f"pg_autoctl {' '.join(args[:2])} did not print JSON: "
                f"{result['stdout'][:200]!r} ({' | '.join(_error_lines(result['stderr']))})"
            )
        ) from exc


def _run_as_service_user(conn, argv, stdin=None, timeout=None):
    """
    cmd.run_all as the service user, with only the environment built here.

    Salt's ``runas`` starts ``su - USER -c python`` on every call just to read
    the user's login environment, which this module replaces anyway: runuser
    (util-linux) switches user without it, and ``clean_env`` keeps the
    minion's own environment out.
    """
    if pwd.getpwuid(os.geteuid()).pw_name != conn["user"]:
        argv = ["runuser", "-u", conn["user"], "--", *argv]
    return __salt__["cmd.run_all"](
        argv,
        stdin=stdin,
        env=_environment(conn),
        clean_env=True,
        cwd=conn["home"],
        python_shell=False,
        ignore_retcode=True,
        output_loglevel="trace",
        timeout=timeout,
    )


def _target(conn):
    """
    ``--pgdata X`` for a local instance, else ``--monitor URI``. A monitor URI
    given as an argument wins over a pgdata that only comes from configuration.
    """
    given = conn["given"]
    uri_asked = conn["monitor_uri"] and "monitor_uri" in given and "pgdata" not in given
    if conn["pgdata"] and not uri_asked:
        return ["--pgdata", conn["pgdata"]]
    if conn["monitor_uri"]:
        return ["--monitor", conn["monitor_uri"]]
    raise SaltInvocationError(
        "no instance to ask: give pgdata (a local monitor or node) or monitor_uri, or set "
        "pgfailover:pgdata / pgfailover:monitor_uri"
    )


def _pgdata(conn):
    if not conn["pgdata"]:
        raise SaltInvocationError("pgdata is required: give pgdata or set pgfailover:pgdata")
    return ["--pgdata", conn["pgdata"]]


def _formation_args(conn, formation):
    return ["--formation", formation or conn["formation"]]


# ---------------------------------------------------------------------------
# Validation shared by create functions and states
# ---------------------------------------------------------------------------


def _check_choice(argument, value, allowed):
    if value not in allowed:
        raise SaltInvocationError(
            f"{argument}={value!r} is not allowed; use one of: {', '.join(map(str, allowed))}"
        )


def _check_int(argument, value, low, high):
    if isinstance(value, bool):
        raise SaltInvocationError(f"{argument} must be an integer from {low} to {high}, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SaltInvocationError(
            f"{argument} must be an integer from {low} to {high}, not {value!r}"
        ) from None
    if str(number) != str(value).strip() or not low <= number <= high:
        raise SaltInvocationError(f"{argument} must be an integer from {low} to {high}, not {value!r}")
    return number


def _check_bool(argument, value):
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise SaltInvocationError(f"{argument} must be true or false, not {value!r}")


def _auth_args(auth, skip_pg_hba):
    """``--auth METHOD`` or ``--skip-pg-hba``: exactly one, as pg_autoctl requires."""
    if auth and skip_pg_hba:
        raise SaltInvocationError(
            "give either auth or skip_pg_hba, not both (pg_autoctl: "
            '"Please use either --auth or --skip-pg-hba")'
        )
    if skip_pg_hba:
        return ["--skip-pg-hba"]
    if not auth:
        raise SaltInvocationError(f"auth is required (one of {', '.join(AUTH_METHODS)}), or skip_pg_hba=True")
    _check_choice("auth", auth, AUTH_METHODS)
    return ["--auth", auth]


def _ssl_args(ssl, ssl_mode=None):
    """
    The explicit SSL choice pg_autoctl requires.

    ``ssl`` is ``self-signed``, ``none``, or a dict with ``ca_file``,
    ``server_cert``, ``server_key`` and optionally ``crl_file``.
    """
    if ssl_mode is not None:
        _check_choice("ssl_mode", ssl_mode, LIBPQ_SSL_MODES)
    mode = ["--ssl-mode", ssl_mode] if ssl_mode else []
    if ssl == "self-signed":
        if ssl_mode in ("verify-ca", "verify-full"):
            raise SaltInvocationError(
                f"ssl_mode={ssl_mode} needs a CA: give ssl as ca_file, server_cert, server_key"
            )
        return ["--ssl-self-signed", *mode]
    if ssl == "none":
        return ["--no-ssl"]
    if isinstance(ssl, dict):
        required = ("ca_file", "server_cert", "server_key")
        unknown = sorted(set(ssl) - {*required, "crl_file"})
        if unknown:
            raise SaltInvocationError(
                f"ssl has unknown key(s) {', '.join(unknown)}; allowed: ca_file, server_cert, "
                "server_key, crl_file"
            )
        missing = [key for key in required if not ssl.get(key)]
        if missing:
            raise SaltInvocationError(
                f"ssl is missing {', '.join(missing)}: a CA file, a server certificate and its "
                "key go together"
            )
        args = [
            "--ssl-ca-file", ssl["ca_file"],
            "--server-cert", ssl["server_cert"],
            "--server-key", ssl["server_key"],
        ]  # fmt: skip
        if ssl.get("crl_file"):
            args += ["--ssl-crl-file", ssl["crl_file"]]
        return args + (mode or ["--ssl-mode", "verify-full"])
    raise SaltInvocationError(
        "ssl is required: 'self-signed', 'none', or {ca_file, server_cert, server_key} "
        '(pg_autoctl: "Explicit SSL choice is required")'
    )


def _check_state_names(argument, names):
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in STATES]
    if unknown or not names:
        raise SaltInvocationError(
            f"{argument} has unknown state(s) {', '.join(unknown) or '(none given)'}; "
            f"pg_auto_failover states are: {', '.join(sorted(STATES))}"
        )
    return names


# ---------------------------------------------------------------------------
# Read
# ---------------------------------------------------------------------------


def version(**kwargs):
    """
    Versions of pg_autoctl, the monitor extension it expects and PostgreSQL.

    CLI Example:

    .. code-block:: bash

        salt '*' pgfailover.version
    """
    return _run(_connection(kwargs), ["version"], json_output=True)


def status(**kwargs):
    """
    Status of the local pg_autoctl service and its PostgreSQL (pid, in_recovery...).

    CLI Example:

    .. code-block:: bash

        salt '*' pgfailover.status pgdata=/var/lib/postgresql/pgaf/node
    """
    conn = _connection(kwargs)
    return _run(conn, ["status", *_pgdata(conn)], json_output=True)


def state(formation=None, group=None, local=False, **kwargs):
    """
    The nodes of a formation as the monitor sees them: one dict per node with
    nodename, nodehost, nodeport, health, current_group_state,
    assigned_group_state, candidate_priority, replication_quorum, reported_lsn.

    With ``local=True``, the local node's own view (nodename, nodehost,
    nodeport, formation, node_id, group_id, current_group_state,
    assigned_group_state, and writable: True when its assigned state is a
    writable one, so that it acts as its group's primary) read from
    pg_autoctl's configuration and state files, without running pg_autoctl
    and without the monitor. ``pg_autoctl show state --local``
    is not used: it deletes the running service's order file to its
    PostgreSQL controller (pg_autoctl 2.0, see the known issues), and a
    failover then stalls 10 s.

    CLI Example:

    .. code-block:: bash

        salt -G 'pgfailover:role:monitor' pgfailover.state
        salt node1 pgfailover.state formation=default group=0
        salt node1 pgfailover.state local=True
    """
    conn = _connection(kwargs)
    if _check_bool("local", local):
        return _local_state(conn)
    args = ["show", "state", *_target(conn), *_formation_args(conn, formation)]
    if group is not None:
        args += ["--group", str(_check_int("group", group, 0, 1_000_000))]
    return _run(conn, args, json_output=True)


# The keeper's state file as pg_autoctl 2.0 writes it (KeeperStateData, version 1,
# native layout): version, pg_version, pg_control_version, catalog_version_no,
# system_identifier, current_node_id, current_group, assigned_role,
# current_nodes_version, last_monitor_contact, current_role,
# last_secondary_contact, xlog_lag, keeper_is_paused.
_KEEPER_STATE = struct.Struct("@iiIIQiiiQQiQqi")
_KEEPER_STATE_VERSION = 1
# pg_autoctl's NodeState numbering.
_NODE_STATES = (
    "no_state", "init", "single", "primary", "wait_primary", "wait_standby", "demoted",
    "demote_timeout", "draining", "secondary", "catchingup", "prepare_promotion",
    "stop_replication", "maintenance", "join_primary", "apply_settings", "prepare_maintenance",
    "wait_maintenance", "report_lsn", "fast_forward", "join_secondary",
)  # fmt: skip


def _local_state(conn):
    """The local node's own view, read from pg_autoctl's files (no pg_autoctl process)."""
    files = _instance_files(conn, _pgdata(conn)[1])
    try:
        config = _read_config(files["config"], ["pg_autoctl"])
        with open(files["state"], "rb") as state_file:
            raw = state_file.read(_KEEPER_STATE.size)
    except OSError as exc:
        raise CommandExecutionError(f"the local node's files cannot be read: {exc}") from exc
    if config.get("pg_autoctl", {}).get("role") != "keeper":
        raise CommandExecutionError(f"{conn['pgdata']} is not a node (no keeper configuration)")
    if len(raw) != _KEEPER_STATE.size:
        raise CommandExecutionError(f"{files['state']} is incomplete ({len(raw)} bytes)")
    fields = _KEEPER_STATE.unpack(raw)
    if fields[0] != _KEEPER_STATE_VERSION:
        raise CommandExecutionError(f"{files['state']} has version {fields[0]}, not {_KEEPER_STATE_VERSION}")

    def name(number):
        return _NODE_STATES[number] if 0 <= number < len(_NODE_STATES) else f"unknown({number})"

    return {
        "nodename": config["pg_autoctl"].get("name"),
        "nodehost": config["pg_autoctl"].get("hostname"),
        "nodeport": int(config.get("postgresql", {}).get("port", 0)),
        "formation": config["pg_autoctl"].get("formation"),
        "node_id": fields[5],
        "group_id": fields[6],
        "current_group_state": name(fields[10]),
        "assigned_group_state": name(fields[7]),
        "writable": name(fields[7]) in WRITABLE_STATES,
    }


def events(count=10, formation=None, **kwargs):
    """
    The monitor's latest events for a formation, oldest first.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.events count=20
    """
    conn = _connection(kwargs)
    args = ["show", "events", *_target(conn), *_formation_args(conn, formation)]
    args += ["--count", str(_check_int("count", count, 1, 100_000))]
    return _run(conn, args, json_output=True)


def _uri_rows(conn):
    """``pg_autoctl show uri``: the monitor's row and one per formation (with or without nodes)."""
    # The monitor rejects --formation here: it lists every formation.
    return _run(conn, ["show", "uri", *_target(conn)], json_output=True)


def uri(formation=None, **kwargs):
    """
    The monitor URI and the URI applications use for a formation, as a dict
    ``{"monitor": ..., "formation": ...}`` (the formation URI is None until the
    formation has a node).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.uri
        salt mon pgfailover.uri formation=sales
    """
    conn = _connection(kwargs)
    rows = _uri_rows(conn)
    wanted = formation or conn["formation"]
    uris = {"monitor": None, "formation": None}
    for row in rows:
        if row["type"] == "monitor":
            uris["monitor"] = row["uri"]
        elif row["type"] == "formation" and row["name"] == wanted:
            uris["formation"] = row["uri"]
    return uris


def wait_monitor(timeout=60, interval=0.5, formation=None, **kwargs):
    """
    Poll until the monitor answers (and, given ``formation``, until it holds
    that formation); return its URI. For orchestrations: the step after
    starting the monitor's service, and the first node of a formation, which
    the monitor's host creates.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.wait_monitor timeout=30 pgdata=/var/lib/postgresql/pgaf/monitor
        salt pgb1 pgfailover.wait_monitor formation=billing monitor_uri=postgres://autoctl_node@mon:5431/pg_auto_failover
    """
    timeout = _check_int("timeout", timeout, 0, 86_400)
    if formation is not None:
        _check_name("formation", formation)
    conn = _connection(kwargs)
    deadline = time.monotonic() + timeout
    while True:
        try:
            listed = _uri_rows(conn)
        except CommandExecutionError as exc:
            if time.monotonic() >= deadline:
                raise CommandExecutionError(f"the monitor did not answer within {timeout} s: {exc}") from exc
        else:
            if formation is None or any(r["type"] == "formation" and r["name"] == formation for r in listed):
                return next(row["uri"] for row in listed if row["type"] == "monitor")
            if time.monotonic() >= deadline:
                raise CommandExecutionError(
                    f"the monitor answers but has no formation {formation} after {timeout} s: the "
                    "monitor's host creates the pillar's formations (state pgfailover.monitor)"
                )
        time.sleep(float(interval))


def wait_postgres(timeout=60, interval=0.5, **kwargs):
    """
    Poll until the local instance at ``pgdata`` accepts connections on its
    socket (as the service user, no password involved). Returns True.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.wait_postgres timeout=30 pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    timeout = _check_int("timeout", timeout, 0, 86_400)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _sql_value(conn, "SELECT 1;") == "1"
        except CommandExecutionError as exc:
            if time.monotonic() >= deadline:
                raise CommandExecutionError(f"PostgreSQL did not answer within {timeout} s: {exc}") from exc
        time.sleep(float(interval))


def wait_for_primary(
    timeout=300, interval=0.5, formation=None, sslmode="require", sslrootcert=None, **kwargs
):
    """
    Poll until the formation has a writable primary that accepts a
    replication connection of ``pgautofailover_replicator`` from this host,
    with the password in the service user's .pgpass: what the base backup of a
    new standby needs (the role's password set, a ``replication`` rule in the
    primary's pg_hba.conf). A primary that already serves a secondary has its
    replicator in place: when only pg_hba.conf refuses this host, it is
    returned too (pg_autoctl adds the host's rule once the node registers).
    Returns the primary's state dict; raises CommandExecutionError with the
    last reason when ``timeout`` seconds pass. Give ``monitor_uri`` to ask the
    monitor before a local node exists.

    CLI Example:

    .. code-block:: bash

        salt node2 pgfailover.wait_for_primary timeout=120 monitor_uri='postgres://autoctl_node@mon:5431/pg_auto_failover?sslmode=require'
    """
    timeout = _check_int("timeout", timeout, 0, 86_400)
    _check_choice("sslmode", sslmode, LIBPQ_SSL_MODES)
    conn = _connection(kwargs)
    deadline = time.monotonic() + timeout
    while True:
        nodes, node = [], None
        try:
            nodes = state(formation=formation, **kwargs)
            node = _writable_primary(nodes)
            if node is None:
                reason = "no node is primary yet"
            else:
                _replication_login(conn, node, sslmode, sslrootcert)
                return node
        except CommandExecutionError as exc:
            reason = str(exc)
            serves_standbys = any(n["current_group_state"] == "secondary" for n in nodes)
            if node is not None and serves_standbys and "no pg_hba.conf entry" in reason:
                return node
        if time.monotonic() >= deadline:
            raise CommandExecutionError(f"no primary accepted {REPLICATOR} within {timeout} s: {reason}")
        time.sleep(float(interval))


def _replication_login(conn, node, sslmode, sslrootcert):
    """A physical replication connection to ``node`` as the replicator (IDENTIFY_SYSTEM), or an error."""
    conninfo = (
        f"host={node['nodehost']} port={node['nodeport']} user={REPLICATOR} dbname=replication "
        f"replication=true sslmode={sslmode} connect_timeout=5"
    )
    if sslrootcert:
        conninfo += f" sslrootcert={sslrootcert}"
    argv = [
        os.path.join(conn["bindir"], "psql"),
        "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
        "--dbname", conninfo,
    ]  # fmt: skip
    result = _run_as_service_user(conn, argv, stdin="IDENTIFY_SYSTEM;")
    if result["retcode"] != 0:
        raise CommandExecutionError(
            redact(f"{node['nodename']} refused {REPLICATOR}: {result['stderr'].strip()}")
        )


def settings(formation=None, **kwargs):
    """
    Replication settings of a formation: per node candidate priority and
    replication quorum, the primary's synchronous_standby_names and the
    formation's number_sync_standbys.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.settings
    """
    conn = _connection(kwargs)
    args = ["show", "settings", *_target(conn), *_formation_args(conn, formation)]
    return _run(conn, args, json_output=True)


def standby_names(formation=None, group=0, **kwargs):
    """
    The synchronous_standby_names the monitor computes for a group.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.standby_names
    """
    conn = _connection(kwargs)
    args = ["show", "standby-names", *_target(conn), *_formation_args(conn, formation)]
    args += ["--group", str(_check_int("group", group, 0, 1_000_000))]
    return _run(conn, args, json_output=True)


def primary(formation=None, group=0, **kwargs):
    """
    The node that is the writable primary of a group (its state dict), or None
    while no node is both assigned and reporting a writable state.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.primary
    """
    return _writable_primary(state(formation=formation, group=group, **kwargs))


def _writable_primary(nodes):
    """The node of a state table that is both assigned and reporting a writable state, or None."""
    for node in nodes:
        if node["current_group_state"] in WRITABLE_STATES and node["assigned_group_state"] in WRITABLE_STATES:
            return node
    return None


SETTLED_STATES = frozenset(("single", "primary", "secondary", "maintenance", "wait_primary"))


def is_converged(nodes):
    """
    True when every node of a state table is healthy, has reached its
    assigned state and that state is a settled one (no catchingup, draining,
    ...). ``wait_primary`` counts only while no node is a secondary: with a
    secondary in place the monitor is about to assign ``primary``. False for
    an empty table.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.is_converged "$(salt-call --out=json pgfailover.state)"
    """
    has_secondary = any(node["current_group_state"] == "secondary" for node in nodes)
    return bool(nodes) and all(
        node["current_group_state"] == node["assigned_group_state"]
        and node["health"] == 1
        and node["current_group_state"] in SETTLED_STATES
        and not (node["current_group_state"] == "wait_primary" and has_secondary)
        for node in nodes
    )


def converged(formation=None, **kwargs):
    """
    True when every node of the formation has reached its assigned state and
    the monitor sees it healthy.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.converged
    """
    return is_converged(state(formation=formation, **kwargs))


def wait_converged(timeout=120, interval=0.5, formation=None, expect_nodes=None, **kwargs):
    """
    Poll the monitor until the formation has converged (and has at least
    ``expect_nodes`` nodes when given). Returns the final state table; raises
    CommandExecutionError with the table when ``timeout`` seconds pass first.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.wait_converged timeout=60 expect_nodes=3
    """
    timeout = _check_int("timeout", timeout, 0, 86_400)
    interval = float(interval)
    if expect_nodes is not None:
        expect_nodes = _check_int("expect_nodes", expect_nodes, 1, 1000)
    deadline = time.monotonic() + timeout
    while True:
        try:
            nodes = state(formation=formation, **kwargs)
            error = None
        except CommandExecutionError as exc:
            nodes, error = [], str(exc)
        if is_converged(nodes) and len(nodes) >= (expect_nodes or 0):
            return nodes
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"formation did not converge within {timeout} s: " + (error or format_state_table(nodes))
            )
        time.sleep(interval)


def wait_node_state(name, states, timeout=120, interval=0.5, formation=None, **kwargs):
    """
    Poll the monitor until node ``name`` reports and is assigned one of
    ``states`` (a state name or a list). Returns the node's state dict.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.wait_node_state node2 secondary timeout=60
    """
    wanted = _check_state_names("states", states)
    timeout = _check_int("timeout", timeout, 0, 86_400)
    deadline = time.monotonic() + timeout
    while True:
        nodes = state(formation=formation, **kwargs)
        node = next((n for n in nodes if n["nodename"] == name), None)
        if (
            node
            and node["current_group_state"] in wanted
            and node["assigned_group_state"] == node["current_group_state"]
        ):
            return node
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"node {name} did not reach {' or '.join(wanted)} within {timeout} s: "
                + format_state_table(nodes)
            )
        time.sleep(float(interval))


def format_state_table(nodes):
    """
    One line per node: name, host:port, health, current/assigned state.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.format_state_table "$(salt-call --out=json pgfailover.state)"
    """
    if not nodes:
        return "(no nodes)"
    health = {1: "healthy", 0: "unhealthy", -1: "unknown"}
    return "; ".join(
        f"{n['nodename']} {n['nodehost']}:{n['nodeport']} {health.get(n['health'], n['health'])} "
        f"{n['current_group_state']}/{n['assigned_group_state']}"
        for n in nodes
    )


def _lsn_bytes(lsn):
    """A WAL position such as ``0/3000148`` as a byte count."""
    high, _, low = (lsn or "0/0").partition("/")
    return (int(high, 16) << 32) + int(low or "0", 16)


def cluster_status(formation=None, **kwargs):
    """
    A compact view of a formation, one line per node: name, host:port, role,
    health, current/assigned state, and how far it is behind the primary
    (bytes of WAL, as last reported to the monitor).

    CLI Example:

    .. code-block:: bash

        salt -G 'pgfailover:role:monitor' pgfailover.cluster_status
        salt node1 pgfailover.cluster_status formation=sales
    """
    nodes = state(formation=formation, **kwargs)
    leader = next((n for n in nodes if n["assigned_group_state"] in WRITABLE_STATES), None)
    health = {1: "healthy", 0: "unhealthy", -1: "unknown"}
    lines = []
    for node in nodes:
        if node is leader:
            role, lag = "primary", "-"
        else:
            role = "standby"
            behind = leader and _lsn_bytes(leader["reported_lsn"]) - _lsn_bytes(node["reported_lsn"])
            lag = f"{behind} B" if leader else "?"
        lines.append(
            f"{node['nodename']} {node['nodehost']}:{node['nodeport']} {role} "
            f"{health.get(node['health'], node['health'])} "
            f"{node['current_group_state']}/{node['assigned_group_state']} lag {lag}"
        )
    return lines


def config_get(key=None, **kwargs):
    """
    The local instance's pg_autoctl configuration: the whole file as nested
    dicts, or the value of one ``section.option`` key.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.config_get
        salt node1 pgfailover.config_get pg_autoctl.monitor
    """
    conn = _connection(kwargs)
    values = _read_config_file(conn)
    if key is None:
        return _redact_config(values)
    section, _, option = str(key).partition(".")
    if section not in values or option not in values[section]:
        raise SaltInvocationError(
            f"key={key!r} is not in the configuration; known keys: "
            + ", ".join(f"{s}.{o}" for s in values for o in values[s])
        )
    if option == "password":
        return SECRET_MASK
    return values[section][option]


# pg_autoctl writes its configuration file in place (truncated, then written), and
# the running service writes it again when it reloads after `config set` or
# `enable ssl`: a `config get` in between finds it empty or cut short ("Failed to
# parse configuration file"). Seen in CI right after both. Read again, bounded.
_CONFIG_READS = 10
_CONFIG_REREAD_PAUSE = 0.2


def _read_config_file(conn):
    """The instance's configuration as ``pg_autoctl config get --json`` prints it."""
    argv = ["config", "get", *_pgdata(conn)]
    for _ in range(_CONFIG_READS - 1):
        try:
            return _run(conn, argv, json_output=True)
        except CommandExecutionError as exc:
            if "Failed to parse configuration file" not in str(exc):
                raise
        time.sleep(_CONFIG_REREAD_PAUSE)
    return _run(conn, argv, json_output=True)


def _redact_config(values):
    return {
        section: {
            option: SECRET_MASK if option == "password" and value else value
            for option, value in options.items()
        }
        for section, options in values.items()
    }


def systemd_unit(**kwargs):
    """
    The systemd unit that pg_autoctl itself proposes for the local instance
    (the formula ships its own template; this is for comparison).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.systemd_unit
    """
    conn = _connection(kwargs)
    return _run(conn, ["-q", "show", "systemd", *_pgdata(conn)])["stdout"]


def is_created(**kwargs):
    """
    True when the local instance at ``pgdata`` has finished ``pg_autoctl
    create``: its configuration exists, a node's state file exists, and no
    initialisation is in progress. A half-created instance returns False (a
    PG_VERSION file alone is not enough).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.is_created pgdata=/var/lib/postgresql/pgaf/node
    """
    conn = _connection(kwargs)
    pgdata = _pgdata(conn)[1]
    files = _instance_files(conn, pgdata)
    if not os.path.exists(files["config"]):
        return False
    if os.path.exists(files["init"]) or not os.path.exists(os.path.join(pgdata, "PG_VERSION")):
        return False
    role = _instance_role(conn)
    if role == "monitor":
        return os.path.exists(os.path.join(pgdata, "postgresql-auto-failover.conf"))
    return os.path.exists(files["state"])


def set_aside_instance(label="unregistered", **kwargs):
    """
    Move the local instance's data directory and pg_autoctl's files for it
    aside, each to ``<path>.<label>-<UTC time>`` (``label``: lower-case letters
    and dashes), so that the instance can be created afresh; nothing is
    deleted. Meant for an instance the monitor does not know:
    ``pgfailover.node_present`` uses it for a node whose interrupted
    registration the monitor never kept. Returns the moves made.

    CLI Example:

    .. code-block:: bash

        salt pg3 pgfailover.set_aside_instance pgdata=/var/lib/postgresql/pgaf/pg3
    """
    conn = _connection(kwargs)
    pgdata = _pgdata(conn)[1]
    if not isinstance(label, str) or not re.fullmatch(r"[a-z]+(-[a-z]+)*", label):
        raise SaltInvocationError(f"label={label!r} is not allowed: lower-case letters and dashes")
    files = _instance_files(conn, pgdata)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moves = {}
    for path in (pgdata, os.path.dirname(files["config"]), os.path.dirname(files["state"])):
        if os.path.exists(path):
            moves[path] = f"{path}.{label}-{stamp}"
            os.rename(path, moves[path])
    return moves


def _instance_files(conn, pgdata):
    """Paths of the configuration, state and init files pg_autoctl keeps for ``pgdata``."""
    relative = os.path.abspath(pgdata).lstrip("/")
    config_dir = os.path.join(conn["home"], ".config", "pg_autoctl", relative)
    data_dir = os.path.join(conn["home"], ".local", "share", "pg_autoctl", relative)
    return {
        "config": os.path.join(config_dir, "pg_autoctl.cfg"),
        "state": os.path.join(data_dir, "pg_autoctl.state"),
        "init": os.path.join(data_dir, "pg_autoctl.init"),
    }


def _read_config(config_path, sections=(), wait=2.0):
    """
    pg_autoctl's INI configuration file as nested dicts (empty when absent).
    With ``sections``, those must be there: pg_autoctl rewrites the file in
    place (``config set``, a reload), and a read in between finds it empty
    (seen on the lab as a KeyError in a state during a build that changed a
    timeout), so it is read again for up to ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(config_path)
        except configparser.Error:
            parser = configparser.ConfigParser(interpolation=None)  # caught half-written
        values = {section: dict(parser[section]) for section in parser.sections()}
        missing = [section for section in sections if section not in values]
        if not missing or not os.path.exists(config_path):  # absent: nothing is being rewritten
            return values
        if time.monotonic() >= deadline:
            raise CommandExecutionError(f"{config_path} has no [{'], ['.join(missing)}] section")
        time.sleep(0.1)


# ---------------------------------------------------------------------------
# Monitor settings (pgautofailover.* GUCs), read and written with psql
# ---------------------------------------------------------------------------


def _psql(conn, sql, dbname="pg_auto_failover"):
    """Run SQL, given on standard input, on the local instance as the service user."""
    config = _read_config(_instance_files(conn, _pgdata(conn)[1])["config"], ["postgresql"])
    if "postgresql" not in config:
        raise CommandExecutionError(f"{conn['pgdata']} has no pg_autoctl configuration: is it created?")
    postgresql = config["postgresql"]
    argv = [
        os.path.join(conn["bindir"], "psql"),
        "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
        "--set", "ON_ERROR_STOP=1",
        "--port", postgresql["port"],
        "--dbname", dbname,
    ]  # fmt: skip
    if postgresql.get("host"):
        argv += ["--host", postgresql["host"]]
    result = _run_as_service_user(conn, argv, stdin=sql)
    if result["retcode"] != 0:
        raise CommandExecutionError(redact(f"psql failed: {result['stderr'].strip()}"))
    return result["stdout"]


def _monitor_psql(conn, sql):
    """Run SQL on the monitor: locally when ``pgdata`` is the monitor, else through its URI."""
    if conn["pgdata"] and _instance_role(conn) == "monitor":
        return _psql(conn, sql)
    monitor_uri = conn["monitor_uri"] or config_get("pg_autoctl.monitor", **_connection_options(conn))
    argv = [
        os.path.join(conn["bindir"], "psql"),
        "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
        "--set", "ON_ERROR_STOP=1",
        "--dbname", monitor_uri,
    ]  # fmt: skip
    result = _run_as_service_user(conn, argv, stdin=sql)
    if result["retcode"] != 0:
        raise CommandExecutionError(redact(f"psql on the monitor failed: {result['stderr'].strip()}"))
    return result["stdout"]


def _instance_role(conn):
    config = _read_config(_instance_files(conn, conn["pgdata"])["config"], ["pg_autoctl"])
    return config.get("pg_autoctl", {}).get("role")


def _connection_options(conn):
    return {option: conn[option] for option in CONNECTION_DEFAULTS}


def monitor_settings(**kwargs):
    """
    The monitor's ``pgautofailover.*`` settings, as a dict of name (without the
    prefix) to integer value. Runs on the monitor host.

    CLI Example:

    .. code-block:: bash

        salt -G 'pgfailover:role:monitor' pgfailover.monitor_settings pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    out = _psql(
        conn,
        "SELECT name, setting FROM pg_settings WHERE name LIKE 'pgautofailover.%' ORDER BY name;",
    )
    values = {}
    for line in out.splitlines():
        if "|" in line:
            name, setting = line.split("|", 1)
            values[name.split(".", 1)[1]] = int(setting)
    return values


def _check_monitor_settings(values):
    if not isinstance(values, dict) or not values:
        raise SaltInvocationError(
            f"settings must be a non-empty mapping of {', '.join(MONITOR_SETTINGS)} to integers"
        )
    checked = {}
    for name, value in values.items():
        _check_choice("monitor setting", name, MONITOR_SETTINGS)
        checked[name] = _check_int(f"settings:{name}", value, 0, 86_400_000)
    return checked


def set_monitor_settings(settings, **kwargs):  # pylint: disable=redefined-outer-name
    """
    Set ``pgautofailover.*`` settings on the monitor with ALTER SYSTEM and
    reload it. Returns the settings that changed as ``{name: {old, new}}``.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.set_monitor_settings '{health_check_period: 1000, primary_demote_timeout: 20000}'
    """
    wanted = _check_monitor_settings(settings)
    current = monitor_settings(**kwargs)
    changes = {
        name: {"old": current.get(name), "new": value}
        for name, value in wanted.items()
        if current.get(name) != value
    }
    if changes:
        sql = "".join(
            f"ALTER SYSTEM SET pgautofailover.{name} = {value};\n" for name, value in wanted.items()
        )
        _psql(_connection(kwargs), sql + "SELECT pg_reload_conf();\n")
    return changes


# ---------------------------------------------------------------------------
# Create and remove
# ---------------------------------------------------------------------------


def create_monitor(hostname, port=5432, auth=None, skip_pg_hba=False, ssl=None, ssl_mode=None, **kwargs):
    """
    Initialise a monitor at ``pgdata`` (resumes a half-initialised one). The
    instance is left stopped: the service unit runs it.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.create_monitor mon.example.net port=5431 auth=scram-sha-256 \\
            ssl=self-signed pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    args = [
        "create", "monitor", *_pgdata(conn),
        "--pgctl", os.path.join(conn["bindir"], "pg_ctl"),
        "--hostname", _check_hostname(hostname),
        "--pgport", str(_check_int("port", port, 1, 65535)),
        *_auth_args(auth, skip_pg_hba),
        *_ssl_args(ssl, ssl_mode),
    ]  # fmt: skip
    _run(conn, args)
    return True


def create_postgres(
    name,
    hostname,
    port=5432,
    dbname="postgres",
    auth=None,
    skip_pg_hba=False,
    ssl=None,
    ssl_mode=None,
    candidate_priority=50,
    replication_quorum=True,
    formation=None,
    **kwargs,
):
    """
    Initialise a PostgreSQL node at ``pgdata`` and register it with the monitor
    (``monitor_uri``). The first node of a group becomes the primary; later ones
    clone it and become secondaries. Resumes a half-initialised node. The
    instance is left stopped: the service unit runs it.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.create_postgres node1 node1.example.net port=5432 \\
            auth=scram-sha-256 ssl=self-signed \\
            monitor_uri='postgres://autoctl_node@mon:5431/pg_auto_failover?sslmode=require'
    """
    conn = _connection(kwargs)
    if not conn["monitor_uri"]:
        raise SaltInvocationError("monitor_uri is required to register a node")
    args = [
        "create", "postgres", *_pgdata(conn),
        "--pgctl", os.path.join(conn["bindir"], "pg_ctl"),
        "--monitor", conn["monitor_uri"],
        "--name", _check_name("name", name),
        "--hostname", _check_hostname(hostname),
        "--pgport", str(_check_int("port", port, 1, 65535)),
        "--dbname", _check_name("dbname", dbname),
        *_formation_args(conn, formation),
        *_auth_args(auth, skip_pg_hba),
        *_ssl_args(ssl, ssl_mode),
        "--candidate-priority", str(_check_int("candidate_priority", candidate_priority, 0, 100)),
        "--replication-quorum", str(_check_bool("replication_quorum", replication_quorum)).lower(),
    ]  # fmt: skip
    _run(conn, args)
    return True


def enable_ssl(ssl, ssl_mode=None, timeout=60, **kwargs):
    """
    Change the local instance's SSL setup online with ``pg_autoctl enable
    ssl``: its certificates (``ssl``: ``self-signed`` or ``ca_file``,
    ``server_cert``, ``server_key``) and the ``ssl_mode`` it connects to the
    others with. Returns once PostgreSQL serves them and, on a standby,
    replication uses that sslmode (the running service applies the change on
    its reload), within ``timeout`` seconds. Turning SSL off is refused:
    pg_autoctl's own pg_hba.conf rules stay ``hostssl``. For a whole
    formation, ``salt-run state.orchestrate pgfailover.orch.ssl`` runs this on
    every instance in an order that refuses no connection.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.enable_ssl self-signed ssl_mode=require pgdata=/var/lib/postgresql/pgaf/monitor
        salt pg1 pgfailover.enable_ssl \\
            '{ca_file: /etc/pgf/ca.crt, server_cert: /etc/pgf/pg1.crt, server_key: /etc/pgf/pg1.key}'
    """
    conn = _connection(kwargs)
    if ssl == "none":
        raise SaltInvocationError(
            "ssl=none: SSL is not turned off online; pg_autoctl's own pg_hba.conf rules are hostssl and "
            "stay so, and its connections would be refused"
        )
    _run(conn, ["enable", "ssl", *_pgdata(conn), *_ssl_args(ssl, ssl_mode)])
    wanted = config_get(**_connection_options(conn))["ssl"]
    deadline = time.monotonic() + _check_int("timeout", timeout, 0, 3600)
    while True:
        served = _once_postgres_answers(lambda: _ssl_served(conn, wanted), kwargs)
        if not served:
            return {"ssl": "on", "cert_file": wanted["cert_file"], "sslmode": wanted["sslmode"]}
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"pg_autoctl enable ssl succeeded but after {timeout} s {served}: is the instance's "
                "pg_autoctl service running?"
            )
        time.sleep(0.5)


def _ssl_served(conn, wanted):
    """What the local PostgreSQL does not serve yet of the ``[ssl]`` configuration ``wanted``, or ''."""
    # primary_conninfo is only searched, never printed: it may hold a password.
    sslmode = "sslmode=" + wanted["sslmode"]
    ssl, cert_file, replication = _sql_value(
        conn,
        "SELECT current_setting('ssl') || '|' || current_setting('ssl_cert_file') || '|' || "
        "(NOT pg_is_in_recovery() OR current_setting('primary_conninfo') = '' "
        f"OR strpos(current_setting('primary_conninfo'), {_literal(sslmode)}) > 0);",
    ).split("|", 2)
    if ssl != "on" or cert_file != wanted["cert_file"]:
        return f"PostgreSQL serves ssl={ssl} ssl_cert_file={cert_file!r}, not {wanted['cert_file']!r}"
    if replication != "true":
        return f"replication does not use {sslmode} yet"
    return ""


# Used with fullmatch only: "$" would accept a trailing newline.
_HOSTNAME = re.compile(r"[A-Za-z0-9:]([A-Za-z0-9.:-]{0,252})")


def _identifier(name):
    """A SQL identifier, quoted: mixed case and - or . kept as written, as pg_autoctl quotes its own."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value):
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _check_name(argument, value):
    """The argument's value when pgfailover_pillar.is_name accepts it (the one rule for names)."""
    if not __salt__["pgfailover_pillar.is_name"](value):
        raise SaltInvocationError(
            f"{argument}={value!r} is not allowed; use letters, digits, '_', '.', '-' "
            "(first a letter or '_', at most 63 characters)"
        )
    return value


def _check_hostname(value):
    if not isinstance(value, str) or not _HOSTNAME.fullmatch(value):
        raise SaltInvocationError(
            f"hostname={value!r} is not a host name or IP address; give the address other "
            "nodes use to reach this one"
        )
    return value


def drop_node(name=None, destroy=False, force=False, formation=None, **kwargs):
    """
    Drop a node from the monitor.

    On the node itself (``pgdata``, no ``name``): the keeper leaves the
    formation; with ``destroy=True`` the data directory is removed too.
    From another host (``name``): the monitor drops that node; use
    ``force=True`` for a dead host that cannot take part.

    CLI Example:

    .. code-block:: bash

        salt node3 pgfailover.drop_node
        salt mon pgfailover.drop_node name=node3 force=True
    """
    conn = _connection(kwargs)
    destroy = _check_bool("destroy", destroy)
    force = _check_bool("force", force)
    if name is None:
        args = ["drop", "node", *_pgdata(conn)]
        if destroy:
            args.append("--destroy")
    else:
        if destroy:
            raise SaltInvocationError(
                "destroy only applies to the local node (without name): a data directory is "
                "removed on its own host"
            )
        args = ["drop", "node", *_target(conn), "--name", _check_name("name", name)]
        args += _formation_args(conn, formation)
    if force:
        args.append("--force")
    _run(conn, args)
    return True


def drop_monitor(destroy=False, **kwargs):
    """
    Drop the local monitor; with ``destroy=True`` its data directory too.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.drop_monitor pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    args = ["drop", "monitor", *_pgdata(conn)]
    if _check_bool("destroy", destroy):
        args.append("--destroy")
    _run(conn, args)
    return True


# ---------------------------------------------------------------------------
# Act
# ---------------------------------------------------------------------------


def _perform(kind, formation, group, timeout, kwargs):
    conn = _connection(kwargs)
    # Act on a settled formation only: the monitor refuses a switchover while
    # the primary is still between states (after maintenance, say).
    wait_converged(timeout=timeout, formation=formation, **kwargs)
    before = primary(formation=formation, group=group, **kwargs)
    args = ["perform", kind, *_target(conn), *_formation_args(conn, formation)]
    args += ["--group", str(_check_int("group", group, 0, 1_000_000))]
    args += ["--wait", str(_check_int("timeout", timeout, 0, 86_400))]
    # pg_autoctl 2.0 prints a spurious get_nodes ERROR on success (upstream
    # issue 1033): judge by its exit code and by the monitor's state instead.
    _run(conn, args)
    nodes = wait_converged(timeout=timeout, formation=formation, **kwargs)
    after = primary(formation=formation, group=group, **kwargs)
    return {
        "old_primary": before and before["nodename"],
        "new_primary": after and after["nodename"],
        "nodes": nodes,
    }


def switchover(formation=None, group=0, timeout=60, **kwargs):
    """
    Planned switchover: the primary is demoted and a secondary promoted.
    Waits until the formation has converged, before and after; returns old
    and new primary.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.switchover
    """
    return _perform("switchover", formation, group, timeout, kwargs)


def failover(formation=None, group=0, timeout=60, **kwargs):
    """
    Trigger a failover (the primary is demoted without waiting for it to
    drain). Waits until the formation has converged; returns old and new
    primary.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.failover
    """
    return _perform("failover", formation, group, timeout, kwargs)


def promote(name, formation=None, timeout=60, **kwargs):
    """
    Promote node ``name`` to primary (``perform promotion``). Waits until the
    formation has converged; returns old and new primary.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.promote node2
    """
    conn = _connection(kwargs)
    wait_converged(timeout=timeout, formation=formation, **kwargs)
    before = primary(formation=formation, **kwargs)
    args = ["perform", "promotion", *_target(conn), *_formation_args(conn, formation)]
    args += ["--name", _check_name("name", name)]
    _run(conn, args)
    nodes = wait_converged(timeout=timeout, formation=formation, **kwargs)
    after = primary(formation=formation, **kwargs)
    return {
        "old_primary": before and before["nodename"],
        "new_primary": after and after["nodename"],
        "nodes": nodes,
    }


def enable_maintenance(allow_failover=False, **kwargs):
    """
    Put the local node into maintenance. A primary needs
    ``allow_failover=True`` (it is failed over first); the monitor refuses when
    it would block writes.

    CLI Example:

    .. code-block:: bash

        salt node2 pgfailover.enable_maintenance
        salt node1 pgfailover.enable_maintenance allow_failover=True
    """
    conn = _connection(kwargs)
    args = ["enable", "maintenance", *_pgdata(conn)]
    if _check_bool("allow_failover", allow_failover):
        args.append("--allow-failover")
    _run(conn, args)
    return True


def disable_maintenance(**kwargs):
    """
    Take the local node out of maintenance.

    CLI Example:

    .. code-block:: bash

        salt node2 pgfailover.disable_maintenance
    """
    conn = _connection(kwargs)
    _run(conn, ["disable", "maintenance", *_pgdata(conn)])
    return True


def disable_monitor(force=False, **kwargs):
    """
    Detach the local node from its monitor (``disable monitor``); with
    ``force=True`` also when the monitor is gone. PostgreSQL keeps running.
    The first step of replacing a monitor.

    CLI Example:

    .. code-block:: bash

        salt node2 pgfailover.disable_monitor force=True
    """
    conn = _connection(kwargs)
    args = ["disable", "monitor", *_pgdata(conn)]
    if _check_bool("force", force):
        args.append("--force")
    _run(conn, args)
    return True


def enable_monitor(uri, **kwargs):
    """
    Register the local node, detached from its monitor, with the monitor at
    ``uri`` (no password in it: the service user's .pgpass has it).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.enable_monitor 'postgres://autoctl_node@mon2:5431/pg_auto_failover?sslmode=require'
    """
    conn = _connection(kwargs)
    _check_no_password_in_uri("uri", uri)
    _run(conn, ["enable", "monitor", *_pgdata(conn), uri])
    return True


def attach_monitor(uri, timeout=120, **kwargs):
    """
    The local node is registered with the monitor at ``uri``: when its
    configuration names another monitor (or none), it is detached from that
    one by force and registered with this one, then this waits until the new
    monitor sees it in a settled state. Nothing happens when it is attached
    already. Run it on the primary first, then on the secondaries.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.attach_monitor 'postgres://autoctl_node@mon2:5431/pg_auto_failover?sslmode=require'
    """
    _connection(kwargs)
    _check_no_password_in_uri("uri", uri)
    current = config_get("pg_autoctl.monitor", **kwargs)
    name = config_get("pg_autoctl.name", **kwargs)
    if current == uri:
        return {"changed": False, "node": name, "monitor": uri}
    if current != "PG_AUTOCTL_DISABLED":
        disable_monitor(force=True, **kwargs)
    enable_monitor(uri, **kwargs)
    node = wait_node_state(name, sorted(SETTLED_STATES), timeout=timeout, **kwargs)
    return {
        "changed": True,
        "node": name,
        "monitor": {"old": redact(current), "new": uri},
        "state": node["current_group_state"],
    }


def monitor_extension(require_current=False, **kwargs):
    """
    The pgautofailover extension on the monitor: the version installed in its
    database and the version this host's pg_autoctl expects. After an upgrade
    they must be equal (the monitor updates its extension when it restarts);
    with ``require_current=True`` a difference is an error.

    CLI Example:

    .. code-block:: bash

        salt -G 'pgfailover:role:monitor' pgfailover.monitor_extension
    """
    conn = _connection(kwargs)
    installed = _monitor_psql(
        conn, "SELECT extversion FROM pg_extension WHERE extname = 'pgautofailover'"
    ).strip()
    expected = version(**kwargs)["pgautofailover"]
    if _check_bool("require_current", require_current) and installed != expected:
        raise CommandExecutionError(
            f"the monitor's pgautofailover extension is {installed or 'missing'} but pg_autoctl expects "
            f"{expected}: restart the monitor's unit so that it updates the extension"
        )
    return {"installed": installed, "expected": expected, "current": installed == expected}


def _promotable(node, primary_node):
    return (
        node is not primary_node
        and node["candidate_priority"] > 0
        and node["health"] == 1
        and node["current_group_state"] == node["assigned_group_state"] == "secondary"
    )


def preflight(action, nodes=None, target=None, sync_standbys=None, formation=None, **kwargs):
    """
    Why a day-2 action would be unsafe now, as a list of sentences (empty when
    it may go ahead). Orchestrations call it before changing anything.

    action
        ``switchover`` (to ``target`` when given), ``rolling`` (maintenance of
        every node in turn, the primary after a switchover), ``remove``
        (``nodes`` leave the formation), ``replace`` (dead ``nodes`` are
        dropped by force) or ``rebuild`` (live ``nodes`` are dropped by force,
        set aside and cloned again)
    sync_standbys
        the formation's number_sync_standbys once the action is done
        (default: its current value)

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.preflight switchover target=node2
        salt mon pgfailover.preflight remove nodes='[node3]'
    """
    _check_choice("action", action, ("switchover", "rolling", "remove", "replace", "rebuild"))
    names = _name_list("nodes", nodes)
    table = state(formation=formation, **kwargs)
    if not table:
        return ["the formation has no nodes"]
    by_name = {node["nodename"]: node for node in table}
    leader = next((n for n in table if n["assigned_group_state"] in WRITABLE_STATES), None)
    sync = (
        number_sync_standbys(formation=formation, **kwargs)
        if sync_standbys is None
        else _check_int("sync_standbys", sync_standbys, 0, 1000)
    )
    unknown = [name for name in names if name not in by_name]
    if unknown:
        return [
            f"node(s) {', '.join(unknown)} not registered in the formation; registered: {', '.join(by_name)}"
        ]
    if action == "switchover":
        return _switchover_refusals(table, leader, target)
    if action == "rolling":
        return _rolling_refusals(table, leader, sync)
    if action == "remove":
        return _removal_refusals(table, leader, names, sync)
    if action == "rebuild":
        return _rebuild_refusals(by_name, names)
    return _replacement_refusals(by_name, names)


def _name_list(argument, names):
    if names is None:
        return []
    if isinstance(names, str):
        names = [part.strip() for part in names.strip("[]").split(",") if part.strip()]
    return [_check_name(argument, name) for name in names]


def _switchover_refusals(table, leader, target):
    if not is_converged(table):
        return ["the formation has not converged (" + format_state_table(table) + "): wait, then retry"]
    if leader is None:
        return ["the formation has no primary"]
    if target is None:
        if not any(_promotable(node, leader) for node in table):
            return [
                "no healthy secondary with candidate priority above 0 can take over: a switchover "
                "would block writes"
            ]
        return []
    node = next((n for n in table if n["nodename"] == target), None)
    if node is None:
        return [f"target {target} is not registered in the formation"]
    if node is leader:
        return [f"target {target} is the primary already"]
    if not _promotable(node, leader):
        return [
            f"target {target} cannot be promoted: it must be a healthy secondary with candidate "
            f"priority above 0 (it is {node['current_group_state']}, priority {node['candidate_priority']})"
        ]
    return []


def _quorum_standbys(table, leader, leaving=()):
    return [n for n in table if n is not leader and n["replication_quorum"] and n["nodename"] not in leaving]


def _rolling_refusals(table, leader, sync):
    problems = _switchover_refusals(table, leader, None)
    standbys = _quorum_standbys(table, leader)
    if sync and len(standbys) - 1 < sync:
        problems.append(
            f"number_sync_standbys is {sync} and {len(standbys)} standby(s) take part in the quorum: "
            "one of them in maintenance would block writes; add a standby or lower number_sync_standbys"
        )
    return problems


def _removal_refusals(table, leader, names, sync):
    problems = []
    if len(names) >= len(table):
        problems.append("every node would leave the formation: use the clean orchestration for that")
    if leader is not None and leader["nodename"] in names and len(names) < len(table):
        problems.append(f"node {leader['nodename']} is the primary: switch over first, then remove it")
    left = _quorum_standbys(table, leader, leaving=names)
    if sync and len(left) < sync + 1:
        problems.append(
            f"after the removal {len(left)} standby(s) would take part in the quorum, and "
            f"number_sync_standbys {sync} needs {sync + 1} (one more than it, so that losing one standby "
            "does not block writes); lower number_sync_standbys first"
        )
    return problems


def _replacement_refusals(by_name, names):
    problems = []
    for name in names:
        node = by_name[name]
        if node["assigned_group_state"] in WRITABLE_STATES:
            problems.append(
                f"node {name} is still the assigned primary: wait until the monitor has failed over"
            )
        elif node["health"] == 1:
            problems.append(
                f"node {name} is healthy: it is not dead; remove a live node with the scale orchestration"
            )
    return problems


def _rebuild_refusals(by_name, names):
    if len(names) >= len(by_name):
        return ["every node would be cloned again, and a clone needs a node to copy from"]
    return [
        f"node {name} is the assigned primary: switch over first, then rebuild it"
        for name in names
        if by_name[name]["assigned_group_state"] in WRITABLE_STATES
    ]


def set_candidate_priority(priority, name=None, **kwargs):
    """
    Set a node's candidate priority (0..100; 0 never becomes primary). Without
    ``name``, the local node; with it, another node of the local node's
    formation.

    CLI Example:

    .. code-block:: bash

        salt node3 pgfailover.set_candidate_priority 0
    """
    conn = _connection(kwargs)
    value = _check_int("priority", priority, 0, 100)
    # No --formation: pg_autoctl 2.0 then misreads the value; the node's own
    # configuration names its formation.
    args = ["set", "node", "candidate-priority", *_pgdata(conn)]
    if name is not None:
        args += ["--name", _check_name("name", name)]
    return _run(conn, [*args, str(value)], json_output=True)


def set_replication_quorum(quorum, name=None, formation=None, **kwargs):
    """
    Set whether a node takes part in the synchronous replication quorum.
    Without ``name``, the local node. Waits until the primary has applied it.

    CLI Example:

    .. code-block:: bash

        salt node3 pgfailover.set_replication_quorum false
    """
    conn = _connection(kwargs)
    value = _check_bool("quorum", quorum)
    if name is None:
        name = config_get("pg_autoctl.name", **_connection_options(conn))
        formation = formation or config_get("pg_autoctl.formation", **_connection_options(conn))
    name = _check_name("name", name)
    formation = _check_name("formation", formation or conn["formation"])
    # `pg_autoctl set node replication-quorum` of 2.0 sends an uninitialised
    # group to the monitor once a group has three nodes and fails; the
    # monitor's own function does the same work.
    _monitor_psql(
        conn,
        f"SELECT pgautofailover.set_node_replication_quorum({_literal(formation)}, {_literal(name)}, "
        f"{str(value).lower()});",
    )
    return {"replication-quorum": value}


def set_number_sync_standbys(number, formation=None, **kwargs):
    """
    Set the formation's number_sync_standbys. The monitor refuses values that
    need more eligible standbys than there are (N needs N+1 standbys with
    candidate priority > 0 in the quorum).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.set_number_sync_standbys 1
    """
    conn = _connection(kwargs)
    value = _check_int("number", number, 0, 100)
    formation = _check_name("formation", formation or conn["formation"])
    # The monitor refuses while the primary is applying settings (after a
    # previous change, say): wait until it has settled.
    _wait_primary_settled(formation, 60, kwargs)
    # `pg_autoctl set formation number-sync-standbys --formation F N` of 2.0
    # misreads N; the monitor's own function does the same work.
    _monitor_psql(
        conn, f"SELECT pgautofailover.set_formation_number_sync_standbys({_literal(formation)}, {value});"
    )
    return {"number-sync-standbys": value}


def _wait_primary_settled(formation, timeout, kwargs):
    """Poll until the primary reports and is assigned primary or wait_primary (other nodes may be down)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = state(formation=formation, **kwargs)
        if any(
            n["current_group_state"] == n["assigned_group_state"] in ("primary", "wait_primary", "single")
            for n in nodes
        ):
            return
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"the primary did not settle within {timeout} s: " + format_state_table(nodes)
            )
        time.sleep(0.5)


def number_sync_standbys(formation=None, **kwargs):
    """
    The formation's number_sync_standbys.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.number_sync_standbys
    """
    conn = _connection(kwargs)
    args = ["get", "formation", "number-sync-standbys", *_pgdata(conn)]
    args += _formation_args(conn, formation)
    return int(_run(conn, args, json_output=True)["number-sync-standbys"])


def formation(name=None, **kwargs):
    """
    A formation as the monitor stores it (kind, dbname, number_sync_standbys),
    or None when it does not exist. Runs on the monitor host.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.formation default pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    name = _check_name("name", name or conn["formation"])
    out = _psql(
        conn,
        "SELECT kind, dbname, number_sync_standbys FROM pgautofailover.formation "
        f"WHERE formationid = {_literal(name)};",
    ).strip()
    if not out:
        return None
    kind, dbname, number = out.split("|")
    return {"name": name, "kind": kind, "dbname": dbname, "number_sync_standbys": int(number)}


def create_formation(name, kind="pgsql", dbname="postgres", **kwargs):
    """
    Create a formation on the local monitor.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.create_formation sales dbname=sales pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    _check_choice("kind", kind, ("pgsql", "citus"))
    args = ["create", "formation", *_pgdata(conn), "--formation", _check_name("name", name)]
    args += ["--kind", kind, "--dbname", _check_name("dbname", dbname), "--enable-secondary"]
    _run(conn, args)
    return True


def drop_formation(name, **kwargs):
    """
    Drop a formation from the local monitor; pg_autoctl refuses while nodes
    are still registered in it.

    CLI Example:

    .. code-block:: bash

        salt mon pgfailover.drop_formation sales pgdata=/var/lib/postgresql/pgaf/monitor
    """
    conn = _connection(kwargs)
    _run(conn, ["drop", "formation", *_pgdata(conn), "--formation", _check_name("name", name)])
    return True


def system_identifier(**kwargs):
    """
    The database system identifier of the local data directory (from
    ``pg_controldata``), or None when it holds no initialised cluster.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.system_identifier
    """
    conn = _connection(kwargs)
    pgdata = _pgdata(conn)[1]
    if not os.path.exists(os.path.join(pgdata, "global", "pg_control")):
        return None
    result = _run_as_service_user(conn, [os.path.join(conn["bindir"], "pg_controldata"), pgdata])
    match = re.search(r"^Database system identifier:\s*(\d+)", result["stdout"], re.MULTILINE)
    return int(match.group(1)) if result["retcode"] == 0 and match else None


def formation_system_identifiers(formation=None, **kwargs):
    """
    The system identifiers the monitor has recorded for the nodes of a
    formation (one for a healthy formation; empty before its first node).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.formation_system_identifiers
    """
    conn = _connection(kwargs)
    formation = _check_name("formation", formation or conn["formation"])
    rows = _monitor_psql(
        conn,
        "SELECT DISTINCT sysidentifier FROM pgautofailover.node "
        f"WHERE formationid = {_literal(formation)} AND sysidentifier IS NOT NULL AND sysidentifier <> 0",
    )
    return sorted(int(line) for line in rows.split() if line.strip())


def in_recovery(**kwargs):
    """
    True when the local instance is a standby (in recovery), False on a
    primary.

    CLI Example:

    .. code-block:: bash

        salt node2 pgfailover.in_recovery
    """
    conn = _connection(kwargs)
    return _sql_value(conn, "SELECT pg_is_in_recovery();") == "t"


def backup_info(stanza=None):
    """
    The formation's backups in pgBackRest's repository (the ``backup``
    section of the pillar): status, each backup's label, type, times, sizes
    and WAL range, and the oldest time a restore can reach. Same as
    ``pgfailover_backup.info``, which also runs on a repository host without
    pg_autoctl.

    CLI Example:

    .. code-block:: bash

        salt pg1 pgfailover.backup_info
        salt pg1 pgfailover.backup_info stanza=default
    """
    return __salt__["pgfailover_backup.info"](**({"stanza": stanza} if stanza else {}))


_RESTORE_POINT = re.compile(r"[A-Za-z0-9_.:-]{1,63}")


def restore_point(name, **kwargs):
    """
    Create the named restore point ``name`` on the local node, which must be
    the formation's primary, and switch to a new WAL file so that it reaches
    the archive now. ``pgfailover.orch.restore`` can then restore to it
    (``target_name``). Returns its name, WAL location and time.

    CLI Example:

    .. code-block:: bash

        salt pg1 pgfailover.restore_point before-migration
    """
    conn = _connection(kwargs)
    if not isinstance(name, str) or not _RESTORE_POINT.fullmatch(name):
        raise SaltInvocationError(
            f"restore point name {name!r} is not allowed; use letters, digits and _ . : - (63 at most)"
        )
    if in_recovery(**kwargs):
        raise CommandExecutionError(
            f"{conn['pgdata']} is a secondary: create the restore point on the primary "
            f"({primary(**kwargs).get('nodename')})"
        )
    row = _sql_value(
        conn,
        f"SELECT pg_create_restore_point({_literal(name)}) || ' ' || "
        "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00');",
    )
    lsn, created = row.split(" ", 1)
    _sql_value(conn, "SELECT pg_switch_wal();")
    return {"name": name, "lsn": lsn, "time": created}


def _saslprep(password):
    """
    ``password`` as SCRAM hashes it: SASLprep (RFC 4013) exactly as
    PostgreSQL's pg_saslprep applies it, server and libpq alike. ASCII is
    kept as it is; otherwise non-ASCII spaces become spaces, characters
    "commonly mapped to nothing" go, the result is NFKC-normalised; when it
    is empty or holds a prohibited, unassigned or badly mixed bidirectional
    character, PostgreSQL hashes the password unchanged, and so does this.
    """
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if not stringprep.in_table_b1(char)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(_prohibited(char) for char in prepared):
        return password
    right_to_left = [stringprep.in_table_d1(char) for char in prepared]
    mixed = any(stringprep.in_table_d2(char) for char in prepared)
    if any(right_to_left) and (mixed or not (right_to_left[0] and right_to_left[-1])):
        return password
    return prepared


def _prohibited(char):
    """RFC 4013's prohibited output (tables C.1.2 to C.9) and unassigned code points (A.1)."""
    return any(
        check(char)
        for check in (
            stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3,
            stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6,
            stringprep.in_table_c7, stringprep.in_table_c8, stringprep.in_table_c9,
            stringprep.in_table_a1,
        )
    )  # fmt: skip


def _scram_verifier(password, salt=None, iterations=4096):
    """
    The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (after
    SASLprep, as the server and libpq do): the formula sends this, never the
    password, to the server.
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw):
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _verifier_matches(verifier, password):
    try:
        head = verifier.split("$")[1]
        iterations, salt = head.split(":")
        return hmac.compare_digest(
            _scram_verifier(password, base64.b64decode(salt), int(iterations)), verifier
        )
    except (AttributeError, IndexError, ValueError):
        return False


def _password(password, password_pillar):
    """The password given, or the one at pillar key ``password_pillar`` (which keeps it off command lines)."""
    if password_pillar is not None:
        password = salt.utils.data.traverse_dict_and_list(__pillar__, password_pillar, None)
        if not password:
            raise SaltInvocationError(f"pillar key {password_pillar} is empty or missing")
    if not isinstance(password, str) or not password:
        raise SaltInvocationError("a password is needed: give password_pillar (a pillar key) or password")
    return password


def _sql_value(conn, sql, dbname="postgres"):
    """The single value a query on a database of the local instance prints ('' for no row)."""
    return _psql(conn, sql, dbname=dbname).strip()


def role(name, dbname="postgres", **kwargs):
    """
    A role of the local instance: ``{"login": bool, "password_set": bool,
    "superuser": bool, "connection_limit": int (-1: none), "pg_monitor": bool
    (member of pg_monitor), "reads_formation": bool (may read the monitor's
    node and formation tables; False on a node)}``, or None when it does not
    exist. The password itself is never returned. ``dbname``: the database
    asked (``pg_auto_failover`` on the monitor, where its tables are).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.role pgautofailover_replicator
        salt monitor pgfailover.role pgfailover_metrics dbname=pg_auto_failover
    """
    conn = _connection(kwargs)
    name = _check_name("name", name)
    out = _sql_value(
        conn,
        "SELECT rolcanlogin, rolpassword IS NOT NULL, rolsuper, rolconnlimit, "
        "pg_has_role(oid, 'pg_monitor', 'MEMBER'), "
        f"{_READS_FORMATION} "
        f"FROM pg_authid WHERE rolname = {_literal(name)};",
        dbname=_check_name("dbname", dbname),
    )
    if not out:
        return None
    login, password_set, superuser, limit, monitor, reads_formation = out.split("|")
    return {
        "login": login == "t",
        "password_set": password_set == "t",
        "superuser": superuser == "t",
        "connection_limit": int(limit),
        "pg_monitor": monitor == "t",
        "reads_formation": reads_formation == "t",
    }


# The monitor's tables a metrics role reads (pgfailover_node_*, pgfailover_formation_*).
_FORMATION_TABLES = ("pgautofailover.node", "pgautofailover.formation")
# CASE, not AND: only CASE guarantees the privilege checks (which fail on a
# schema that does not exist) are not evaluated on a node.
_READS_FORMATION = (
    "CASE WHEN to_regclass('pgautofailover.node') IS NULL THEN false ELSE "
    "has_schema_privilege(oid, 'pgautofailover', 'USAGE') AND "
    + " AND ".join(f"has_table_privilege(oid, '{table}', 'SELECT')" for table in _FORMATION_TABLES)
    + " END"
)


def set_monitoring_role(name, connection_limit=5, read_formation=False, **kwargs):
    """
    Create or adjust role ``name`` on the local primary for a local
    monitoring client (the health endpoint, the metrics exporter): LOGIN
    without a password (it connects over the socket, mapped by
    pg_ident.conf), not a superuser, member of pg_monitor, at most
    ``connection_limit`` sessions. With ``read_formation=True`` (on the
    monitor), it may also read the monitor's node and formation tables, and
    nothing else of its schema.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.set_monitoring_role pgfailover_health connection_limit=5
        salt monitor pgfailover.set_monitoring_role pgfailover_metrics read_formation=True
    """
    conn = _connection(kwargs)
    name = _check_name("name", name)
    limit = _check_int("connection_limit", connection_limit, 1, 1000)
    ident = _identifier(name)
    sql = (
        f"SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(name)}) AS missing \\gset\n"
        f"\\if :missing\nCREATE ROLE {ident};\n\\endif\n"
        f"ALTER ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD NULL "
        f"CONNECTION LIMIT {limit};\n"
        f"GRANT pg_monitor TO {ident};\n"
    )
    _psql(conn, sql, dbname="postgres")
    if _check_bool("read_formation", read_formation):
        grants = f"GRANT USAGE ON SCHEMA pgautofailover TO {ident};\n" + "".join(
            f"GRANT SELECT ON {table} TO {ident};\n" for table in _FORMATION_TABLES
        )
        _psql(conn, grants, dbname="pg_auto_failover")
    return True


def role_password_matches(name, password=None, password_pillar=None, **kwargs):
    """
    True when role ``name`` of the local instance has the password at pillar
    key ``password_pillar`` (or ``password``, from Python callers: on a
    command line it would land in the job cache), checked against the stored
    SCRAM verifier; nothing is sent to the server.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.role_password_matches app password_pillar=pgfailover:passwords:app
    """
    password = _password(password, password_pillar)
    conn = _connection(kwargs)
    name = _check_name("name", name)
    stored = _sql_value(conn, f"SELECT rolpassword FROM pg_authid WHERE rolname = {_literal(name)};")
    return _verifier_matches(stored, password)


def set_role_password(name, password=None, create=False, password_pillar=None, **kwargs):
    """
    Set (with ``create=True``, create with LOGIN) role ``name``'s password on
    the local primary: the one at pillar key ``password_pillar`` (or
    ``password``, from Python callers). Only its SCRAM verifier is sent, on
    psql's standard input: the password is on no command line and in no
    server log.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.set_role_password app password_pillar=pgfailover:passwords:app create=True
    """
    conn = _connection(kwargs)
    name = _check_name("name", name)
    password = _password(password, password_pillar)
    verb = "CREATE ROLE" if _check_bool("create", create) else "ALTER ROLE"
    login = " LOGIN" if verb == "CREATE ROLE" else ""
    verifier = _scram_verifier(password)
    _psql(conn, f"{verb} {_identifier(name)}{login} PASSWORD {_literal(verifier)};", dbname="postgres")
    return True


def database_owner(dbname, **kwargs):
    """
    The owner of database ``dbname`` on the local instance, or None when the
    database does not exist.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.database_owner appdb
    """
    conn = _connection(kwargs)
    dbname = _check_name("dbname", dbname)
    return (
        _sql_value(
            conn, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {_literal(dbname)};"
        )
        or None
    )


def set_database_owner(dbname, owner, **kwargs):
    """
    Make ``owner`` the owner of database ``dbname`` on the local primary.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.set_database_owner appdb app
    """
    conn = _connection(kwargs)
    dbname, owner = _check_name("dbname", dbname), _check_name("owner", owner)
    _psql(conn, f"ALTER DATABASE {_identifier(dbname)} OWNER TO {_identifier(owner)};", dbname="postgres")
    return True


def _wait_for_reload(conn, loaded_before, timeout=10):
    """Until a new session sees a configuration load time later than ``loaded_before``."""
    deadline = time.monotonic() + timeout
    while _sql_value(conn, "SELECT pg_conf_load_time();") == loaded_before:
        if time.monotonic() >= deadline:
            raise CommandExecutionError(f"PostgreSQL did not reload its configuration within {timeout} s")
        time.sleep(0.05)


def reload_postgres(**kwargs):
    """
    Reload the local instance's configuration (pg_hba.conf, reloadable
    settings) with pg_reload_conf(), and return once new sessions see it
    (the postmaster's configuration load time has moved).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.reload_postgres
    """
    conn = _connection(kwargs)

    def reload():
        loaded_before = _sql_value(conn, "SELECT pg_conf_load_time();")
        reloaded = _sql_value(conn, "SELECT pg_reload_conf();") == "t"
        _wait_for_reload(conn, loaded_before)
        return reloaded

    return _once_postgres_answers(reload, kwargs)


def _once_postgres_answers(action, kwargs, attempts=3):
    """
    ``action()`` once the local instance answers; again if PostgreSQL went
    away meanwhile. Called right after a unit starts, PostgreSQL may still be
    starting, and the keeper of a new standby restarts it once more as it
    catches up (seen on the lab: the first query after the wait failed).
    """
    for attempt in range(attempts):
        wait_postgres(timeout=60, **kwargs)
        try:
            return action()
        except CommandExecutionError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)


def apply_settings(unit, names=None, **kwargs):
    """
    Apply a changed settings file to the local instance: reload, and restart
    its unit only when PostgreSQL reports one of ``names`` (the settings the
    file manages; all settings when not given) as needing a restart
    (``pending_restart``, e.g. shared_buffers). pg_autoctl's own changes,
    such as recovery_target_timeline on a promoted node, do not count when
    ``names`` is given. Returns the settings that needed the restart (an
    empty list when a reload was enough).

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.apply_settings pgautofailover-node-node1 names='[shared_buffers]'
    """
    conn = _connection(kwargs)
    reload_postgres(**kwargs)
    pending = _once_postgres_answers(
        lambda: _sql_value(
            conn, "SELECT string_agg(name, ',' ORDER BY name) FROM pg_settings WHERE pending_restart;"
        ),
        kwargs,
    )
    wanted = None if names is None else {str(name).lower() for name in names}
    needs_restart = [name for name in pending.split(",") if name and (wanted is None or name in wanted)]
    if needs_restart:
        __salt__["service.restart"](unit)
        wait_postgres(timeout=120, **kwargs)
    return needs_restart


SECRET_CONFIG_KEYS = ("replication.password",)


def reload_service(**kwargs):
    """
    Make the local running pg_autoctl service re-read its configuration
    (``pg_autoctl reload``), after ``config_set`` for instance.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.reload_service
    """
    conn = _connection(kwargs)
    _run(conn, ["reload", *_pgdata(conn)])
    return True


def config_set(key, value, **kwargs):
    """
    Set one ``section.option`` of the local pg_autoctl configuration. Secret
    keys (``replication.password``) are refused: the value would be on a
    command line; the formula writes them to files instead.

    CLI Example:

    .. code-block:: bash

        salt node1 pgfailover.config_set timeout.network_partition_timeout 20
    """
    if key in SECRET_CONFIG_KEYS or str(key).endswith(".password"):
        raise SaltInvocationError(
            f"key={key!r} holds a secret and would appear on a command line; keep passwords "
            "in the service user's .pgpass (the formula's pgfailover:passwords pillar)"
        )
    conn = _connection(kwargs)
    return _run(conn, ["config", "set", *_pgdata(conn), str(key), str(value)], json_output=True)
