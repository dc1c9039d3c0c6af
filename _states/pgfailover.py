"""
States for pg_auto_failover monitors, nodes and formations.

Built on the ``pgfailover`` execution module: every state calls it through
``__salt__`` and never runs pg_autoctl itself. Connection options (``user``,
``home``, ``runtime_dir``, ``pg_autoctl``, ``bindir``, ``pgdata``,
``monitor_uri``, ``formation``) are passed through to the module and default to
``config.get("pgfailover:<option>")`` there.

Every state answers ``test=True`` with the changes it would make (result
None), also on a host where pg_autoctl is not installed or the instance not
created yet; a second run reports no changes.

.. code-block:: yaml

    pgfailover-node:
      pgfailover.node_present:
        - name: node1
        - hostname: node1.example.net
        - port: 5432
        - auth: scram-sha-256
        - ssl: self-signed
        - candidate_priority: 50
        - pgdata: /var/lib/postgresql/pgaf/node
        - monitor_uri: postgres://autoctl_node@mon:5431/pg_auto_failover?sslmode=require
"""

import os

import salt.utils.data
from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pgfailover"

MAINTENANCE_STATES = ("prepare_maintenance", "wait_maintenance", "maintenance")
SECRET = "******"


def __virtual__():
    # Loaded even where pg_autoctl is missing: node_absent must succeed on a
    # host already cleaned, and every other state then fails with the
    # execution module's own reason instead of "state not found".
    return __virtualname__


def _ret(name):
    return {"name": name, "changes": {}, "result": True, "comment": ""}


def _fail(ret, comment):
    ret.update(result=False, comment=comment)
    return ret


def _module(function, *args, **kwargs):
    missing = _pg_autoctl_missing()
    if missing:
        raise CommandExecutionError(missing)
    return __salt__[f"pgfailover.{function}"](*args, **kwargs)


def _pg_autoctl_missing():
    """Why the execution module is not loaded here (its __virtual__'s reason), or None."""
    if "pgfailover.state" in __salt__:
        return None
    reason = __salt__.missing_modules.get("pgfailover") or "the pgfailover execution module is not loaded"
    return "; ".join(dict.fromkeys(reason.split("; ")))  # the loader repeats it once per attempt


def _not_there_yet(conn):
    """
    In test mode, why this host cannot be asked yet (a dry run on a host not
    built: pg_autoctl not installed, or the local instance not created), else
    None. A state then answers with what it would do instead of failing.
    """
    if not __opts__["test"]:
        return None
    missing = _pg_autoctl_missing()
    if missing:
        return "pg_autoctl is not installed yet"
    if conn.get("pgdata") and not _module("is_created", **conn):
        return f"{conn['pgdata']} is not created yet"
    return None


def _would(ret, comment, reason, changes=None):
    """A test-mode answer on a host not built yet: result None, what would happen, why it was not asked."""
    ret.update(result=None, changes=changes or {}, comment=f"{comment} ({reason}).")
    return ret


def _local_config(conn):
    """The local instance's configuration, or None when it was never created."""
    try:
        return _module("config_get", **conn)
    except CommandExecutionError:
        return None


def _mismatches(actual, wanted):
    """``{key: (actual, wanted)}`` for every wanted value that differs."""
    return {
        key: (actual.get(key), value)
        for key, value in wanted.items()
        if value is not None and str(actual.get(key)) != str(value)
    }


def _describe_mismatches(what, mismatches):
    described = (
        f"{what} exists with "
        + ", ".join(f"{key}={old!r} where the state asks {new!r}" for key, (old, new) in mismatches.items())
        + "; the formula does not change this in place: drop and re-create the instance, or fix "
        "the state's arguments"
    )
    if "ssl" in mismatches:
        described += (
            ". SSL of a running formation changes online with salt-run state.orchestrate pgfailover.orch.ssl "
            "(pgfailover.enable_ssl on every instance, in an order that refuses no connection); SSL is not "
            "turned off online"
        )
    return described


def _ssl_wanted(ssl):
    """A state's ``ssl`` argument as pg_autoctl's configuration records the choice (None: not checked)."""
    if ssl is None:
        return None
    if isinstance(ssl, dict):
        files = {"ca_file": "ca_file", "cert_file": "server_cert", "key_file": "server_key"}
        return {"mode": "ca", **{key: ssl.get(arg) for key, arg in files.items()}}
    return {"mode": str(ssl)}


def _ssl_configured(section):
    """The SSL choice recorded in the [ssl] section of pg_autoctl's configuration."""
    if str(section.get("active")) != "1":
        return {"mode": "none"}
    if section.get("ca_file"):
        files = ("ca_file", "cert_file", "key_file")
        return {"mode": "ca", **{key: section.get(key) for key in files}}
    return {"mode": "self-signed"}


def monitor_present(name, hostname, port=5432, auth=None, skip_pg_hba=False, ssl=None, ssl_mode=None, **conn):
    """
    The monitor whose data directory is ``name`` exists with this hostname,
    port, authentication and SSL choice. Created when missing; a
    half-initialised monitor is resumed.

    .. code-block:: yaml

        pgfailover-monitor:
          pgfailover.monitor_present:
            - name: /var/lib/postgresql/pgaf/monitor
            - hostname: mon.example.net
            - port: 5431
            - auth: scram-sha-256
            - ssl: self-signed
    """
    ret = _ret(name)
    conn["pgdata"] = name
    if __opts__["test"] and _pg_autoctl_missing():
        change = {"monitor": {"old": None, "new": f"{hostname}:{port}"}, "pgdata": name}
        return _would(
            ret, f"The monitor at {name} would be created", "pg_autoctl is not installed yet", change
        )
    try:
        if _module("is_created", **conn):
            config = _module("config_get", **conn)
            if config["pg_autoctl"].get("role") != "monitor":
                return _fail(ret, f"{name} holds a {config['pg_autoctl'].get('role')}, not a monitor")
            mismatches = _mismatches(
                {
                    "hostname": config["pg_autoctl"].get("hostname"),
                    "port": config["postgresql"].get("port"),
                    "auth": config["postgresql"].get("auth_method"),
                    "ssl": _ssl_configured(config.get("ssl", {})),
                },
                {
                    "hostname": hostname,
                    "port": port,
                    "auth": None if skip_pg_hba else auth,
                    "ssl": _ssl_wanted(ssl),
                },
            )
            if mismatches:
                return _fail(ret, _describe_mismatches(f"The monitor at {name}", mismatches))
            ret["comment"] = f"The monitor at {name} exists ({hostname}:{port})."
            return ret
        action = "resumed" if _local_config(conn) else "created"
        change = {"monitor": {"old": None, "new": f"{hostname}:{port}"}, "pgdata": name}
        if __opts__["test"]:
            ret.update(result=None, changes=change, comment=f"The monitor at {name} would be {action}.")
            return ret
        _module(
            "create_monitor",
            hostname,
            port=port,
            auth=auth,
            skip_pg_hba=skip_pg_hba,
            ssl=ssl,
            ssl_mode=ssl_mode,
            **conn,
        )
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"The monitor at {name} could not be checked or created: {exc}")
    ret.update(changes=change, comment=f"The monitor at {name} was {action}.")
    return ret


def _node_entry(name, conn, formation):
    for node in _module("state", formation=formation, **conn):
        if node["nodename"] == name:
            return node
    return None


def node_present(
    name,
    hostname,
    port=5432,
    dbname="postgres",
    auth=None,
    skip_pg_hba=False,
    ssl=None,
    ssl_mode=None,
    candidate_priority=None,
    replication_quorum=None,
    formation=None,
    **conn,
):
    """
    PostgreSQL node ``name`` (data directory ``pgdata``) is registered with
    the monitor (``monitor_uri``) in ``formation`` with this hostname and port.
    Created (and cloned from the primary) when missing; a half-created node
    is resumed, or, when the monitor never kept its interrupted registration,
    its files are moved aside (never deleted) and it is created afresh. On an
    existing node,
    ``candidate_priority`` and ``replication_quorum`` converge to the given
    values and are reported as changes; host, port and formation cannot change
    in place and are reported as errors.

    .. code-block:: yaml

        pgfailover-node:
          pgfailover.node_present:
            - name: node1
            - hostname: node1.example.net
            - auth: scram-sha-256
            - ssl: self-signed
            - pgdata: /var/lib/postgresql/pgaf/node
            - monitor_uri: postgres://autoctl_node@mon:5431/pg_auto_failover?sslmode=require
    """
    ret = _ret(name)
    if __opts__["test"] and _pg_autoctl_missing():
        change = {"node": {"old": None, "new": f"{hostname}:{port}"}}
        return _would(
            ret, f"Node {name} would be created and registered", "pg_autoctl is not installed yet", change
        )
    try:
        if not _module("is_created", **conn):
            return _create_node(
                ret,
                conn,
                hostname=hostname,
                port=port,
                dbname=dbname,
                auth=auth,
                skip_pg_hba=skip_pg_hba,
                ssl=ssl,
                ssl_mode=ssl_mode,
                candidate_priority=50 if candidate_priority is None else candidate_priority,
                replication_quorum=True if replication_quorum is None else replication_quorum,
                formation=formation,
            )
        full = _module("config_get", **conn)
        config = full["pg_autoctl"]
        if config.get("role") != "keeper":
            return _fail(ret, f"{conn.get('pgdata')} holds a {config.get('role')}, not a node")
        mismatches = _mismatches(
            {
                "name": config.get("name"),
                "hostname": config.get("hostname"),
                "port": full.get("postgresql", {}).get("port"),
                "formation": config.get("formation"),
                "dbname": full.get("postgresql", {}).get("dbname"),
                "ssl": _ssl_configured(full.get("ssl", {})),
            },
            {
                "name": name,
                "hostname": hostname,
                "port": port,
                "formation": formation,
                "dbname": dbname,
                "ssl": _ssl_wanted(ssl),
            },
        )
        if mismatches:
            return _fail(ret, _describe_mismatches(f"Node {name}", mismatches))
        return _converge_node_properties(ret, conn, candidate_priority, replication_quorum, formation)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"Node {name} could not be checked or created: {exc}")


def _create_node(ret, conn, **create):
    name = ret["name"]
    action = "resumed" if _local_config(conn) else "created"
    ret["changes"] = {
        "node": {"old": None, "new": f"{create['hostname']}:{create['port']}"},
        "candidate_priority": create["candidate_priority"],
        "replication_quorum": create["replication_quorum"],
    }
    try:
        foreign = _foreign_data(conn, create["formation"])
    except CommandExecutionError as exc:
        if not __opts__["test"]:
            raise
        # A dry run before the monitor exists: nothing to compare with yet.
        comment = f"Node {name} would be {action} and registered with the monitor"
        return _would(ret, comment, f"the monitor cannot be asked yet: {exc}", ret["changes"])
    if foreign:
        ret["changes"] = {}
        return _fail(ret, f"Node {name} is not created: {foreign}")
    if action == "resumed" and _registration_lost(name, conn, create["formation"]):
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"Node {name}: the monitor never kept its interrupted registration; its files would "
                "be moved aside and the node created afresh.",
            )
            return ret
        ret["changes"]["set_aside"] = _module("set_aside_instance", label="unregistered", **conn)
        action = "created afresh (the monitor never kept its interrupted registration; files moved aside)"
    if __opts__["test"]:
        ret.update(result=None, comment=f"Node {name} would be {action} and registered with the monitor.")
        return ret
    _module("create_postgres", name, **create, **conn)
    if not _module("is_created", **conn):
        # Seen once on the lab after a power cut during a base backup: the
        # resumed create exited 0 and left no data directory. A second resume
        # finishes it; a third failure is reported, not hidden.
        _module("create_postgres", name, **create, **conn)
        if not _module("is_created", **conn):
            ret["changes"] = {}
            return _fail(
                ret,
                f"Node {name}: pg_autoctl create reported success twice but {conn.get('pgdata')} is not "
                "initialised; see the service user's pg_autoctl files for the interrupted attempt",
            )
    ret["comment"] = f"Node {name} was {action} and registered with the monitor."
    return ret


def _registration_lost(name, conn, formation):
    """
    Whether a half-created node is unknown to the monitor. pg_autoctl 2.0
    writes its local state before the monitor COMMITs the registration: a
    power cut in between leaves a node id the monitor rolled back, and every
    resume then fails ("don't know how to read state dropped"). A dry run
    that cannot ask the monitor assumes it is not.
    """
    try:
        return _node_entry(name, conn, formation) is None
    except CommandExecutionError:
        if __opts__["test"]:
            return False
        raise


def _foreign_data(conn, formation):
    """Why the data directory belongs to another cluster than the formation's, or None."""
    local = _module("system_identifier", **conn)
    if local is None:
        return None
    known = _module("formation_system_identifiers", formation=formation, **conn)
    if known and local not in known:
        return (
            f"{conn.get('pgdata')} already holds a PostgreSQL cluster with system identifier {local}, and "
            f"the formation's is {', '.join(map(str, known))}: it belongs to another cluster. Move it away "
            "(or remove it) and run again; nothing was changed."
        )
    return None


def _converge_node_properties(ret, conn, candidate_priority, replication_quorum, formation):
    name = ret["name"]
    entry = _node_entry(name, conn, formation)
    if entry is None:
        return _fail(
            ret,
            f"Node {name} is initialised locally but the monitor does not list it in formation "
            f"{formation or 'default'}: it was dropped; remove its data directory (or run "
            "node_absent with destroy) before re-creating it",
        )
    wanted = {}
    if candidate_priority is not None and int(candidate_priority) != entry["candidate_priority"]:
        wanted["candidate_priority"] = int(candidate_priority)
    if replication_quorum is not None:
        quorum = str(replication_quorum).lower() == "true"
        if quorum != entry["replication_quorum"]:
            wanted["replication_quorum"] = quorum
    ret["changes"] = {key: {"old": entry[key], "new": value} for key, value in wanted.items()}
    if not wanted:
        ret["comment"] = f"Node {name} is registered ({entry['current_group_state']})."
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"Node {name} would be updated: {', '.join(wanted)}.")
        return ret
    if "candidate_priority" in wanted:
        _module("set_candidate_priority", wanted["candidate_priority"], **conn)
    if "replication_quorum" in wanted:
        _module("set_replication_quorum", wanted["replication_quorum"], **conn)
    ret["comment"] = f"Node {name} was updated: {', '.join(wanted)}."
    return ret


def node_absent(name, destroy=False, formation=None, allow_last_standby=False, **conn):
    """
    Node ``name`` (the local instance at ``pgdata``) is dropped from the
    monitor. Its data directory stays unless ``destroy`` is True. Refused while
    the node is the primary of a group that has other nodes (switch over
    first), and for the last standby in the replication quorum unless
    ``allow_last_standby`` is True.

    .. code-block:: yaml

        pgfailover-node-dropped:
          pgfailover.node_absent:
            - name: node3
            - pgdata: /var/lib/postgresql/pgaf/node
    """
    ret = _ret(name)
    missing = _pg_autoctl_missing()
    if missing:  # a host cleaned already, or never built: no keeper can run here
        ret["comment"] = (
            f"Node {name}: nothing to drop here, pg_autoctl is not installed ({missing}). If the "
            f"monitor still lists it, drop it there: salt MONITOR pgfailover.drop_node name={name} force=True"
        )
        return ret
    try:
        if _local_config(conn) is None:
            ret["comment"] = f"Node {name} is not initialised here; nothing to drop."
            return ret
        nodes = _module("state", formation=formation, **conn)
        entry = next((n for n in nodes if n["nodename"] == name), None)
        if entry is None:
            ret["comment"] = f"Node {name} is not registered with the monitor; nothing to drop."
            return ret
        if len(nodes) > 1 and entry["assigned_group_state"] in ("primary", "wait_primary"):
            return _fail(
                ret,
                f"Node {name} is the primary; dropping it would stop writes. Run a switchover "
                "first (salt MONITOR pgfailover.switchover), then drop it.",
            )
        if _last_standby(entry, nodes) and not allow_last_standby:
            return _fail(
                ret,
                f"Node {name} is the last standby of the primary: without it the primary has no "
                "synchronous copy and no failover target. Add a standby first, or set "
                "allow_last_standby (pillar pgfailover:clean:allow_last_standby: true) to drop it anyway.",
            )
        keep = "and its data directory removed" if destroy else "(data directory kept)"
        ret["changes"] = {"node": {"old": name, "new": None}, "destroyed": bool(destroy)}
        if __opts__["test"]:
            ret.update(result=None, comment=f"Node {name} would be dropped {keep}.")
            return ret
        _module("drop_node", destroy=destroy, formation=formation, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"Node {name} could not be dropped: {exc}")
    ret["comment"] = f"Node {name} was dropped {keep}."
    return ret


def _last_standby(entry, nodes):
    """True when ``entry`` is the only standby left in the replication quorum."""
    if entry["assigned_group_state"] in ("primary", "wait_primary") or not entry["replication_quorum"]:
        return False
    others = [
        n
        for n in nodes
        if n is not entry
        and n["replication_quorum"]
        and n["assigned_group_state"] not in ("primary", "wait_primary")
    ]
    return len(nodes) > 1 and not others


def formation_present(name, kind="pgsql", dbname="postgres", number_sync_standbys=None, **conn):
    """
    Formation ``name`` exists on the monitor (``pgdata`` of the local monitor)
    with this kind and dbname, and ``number_sync_standbys`` when given.

    .. code-block:: yaml

        pgfailover-formation:
          pgfailover.formation_present:
            - name: default
            - number_sync_standbys: 1
            - pgdata: /var/lib/postgresql/pgaf/monitor
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Formation {name} would be created or checked", pending)
    try:
        current = _module("formation", name, **conn)
        if current is None:
            ret["changes"]["formation"] = {"old": None, "new": {"kind": kind, "dbname": dbname}}
            if __opts__["test"]:
                ret.update(result=None, comment=f"Formation {name} would be created.")
                return ret
            _module("create_formation", name, kind=kind, dbname=dbname, **conn)
            current = _module("formation", name, **conn)
        elif current["kind"] != kind or current["dbname"] != dbname:
            return _fail(
                ret,
                f"Formation {name} exists with kind={current['kind']}, dbname={current['dbname']} "
                f"where the state asks kind={kind}, dbname={dbname}; a formation's kind and "
                "dbname cannot change",
            )
        if number_sync_standbys is not None and current["number_sync_standbys"] != int(number_sync_standbys):
            ret["changes"]["number_sync_standbys"] = {
                "old": current["number_sync_standbys"],
                "new": int(number_sync_standbys),
            }
            if __opts__["test"]:
                ret.update(result=None, comment=f"Formation {name} would be updated.")
                return ret
            _module("set_number_sync_standbys", number_sync_standbys, formation=name, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"Formation {name} could not be checked or set: {exc}")
    ret["comment"] = f"Formation {name} is {'updated' if ret['changes'] else 'as asked'}."
    return ret


def formation_absent(name, **conn):
    """
    Formation ``name`` is not on the monitor (``pgdata`` of the local
    monitor). Refused while nodes are registered in it: they leave first
    (pgfailover.orch.drop_formation drops them, keeping their data).

    .. code-block:: yaml

        pgfailover-formation-dropped:
          pgfailover.formation_absent:
            - name: sales
            - pgdata: /var/lib/postgresql/pgaf/monitor
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Formation {name} would be dropped if it exists", pending)
    try:
        if _module("formation", name, **conn) is None:
            ret["comment"] = f"Formation {name} is not on the monitor."
            return ret
        registered = [node["nodename"] for node in _module("state", formation=name, **conn)]
        if registered:
            return _fail(
                ret,
                f"Formation {name} still has node(s) {', '.join(registered)}: they leave first "
                "(salt-run state.orchestrate pgfailover.orch.drop_formation)",
            )
        ret["changes"] = {"formation": {"old": name, "new": None}}
        if __opts__["test"]:
            ret.update(result=None, comment=f"Formation {name} would be dropped.")
            return ret
        _module("drop_formation", name, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"Formation {name} could not be dropped: {exc}")
    ret["comment"] = f"Formation {name} was dropped."
    return ret


def maintenance(name, enabled=True, allow_failover=False, formation=None, **conn):
    """
    Node ``name`` (the local instance at ``pgdata``) is in maintenance
    (``enabled: True``) or out of it. A primary needs ``allow_failover: True``.

    .. code-block:: yaml

        pgfailover-node-maintenance:
          pgfailover.maintenance:
            - name: node2
            - enabled: True
    """
    ret = _ret(name)
    enabled = str(enabled).lower() == "true"
    pending = _not_there_yet(conn)
    if pending:
        return _would(
            ret, f"Node {name} would be {'put into' if enabled else 'taken out of'} maintenance", pending
        )
    try:
        entry = _node_entry(name, conn, formation)
        if entry is None:
            return _fail(ret, f"Node {name} is not registered with the monitor")
        in_maintenance = entry["assigned_group_state"] in MAINTENANCE_STATES
        if in_maintenance == enabled:
            ret["comment"] = f"Node {name} is {'in' if enabled else 'out of'} maintenance."
            return ret
        ret["changes"] = {
            "maintenance": {"old": in_maintenance, "new": enabled},
            "state": {"old": entry["assigned_group_state"]},
        }
        if __opts__["test"]:
            verb = "put into" if enabled else "taken out of"
            ret.update(result=None, comment=f"Node {name} would be {verb} maintenance.")
            return ret
        if enabled:
            _module("enable_maintenance", allow_failover=allow_failover, **conn)
        else:
            _module("disable_maintenance", **conn)
        entry = _node_entry(name, conn, formation)
        ret["changes"]["state"]["new"] = entry and entry["assigned_group_state"]
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"Maintenance of node {name} could not be changed: {exc}")
    ret["comment"] = f"Node {name} was {'put into' if enabled else 'taken out of'} maintenance."
    return ret


def monitor_settings(name, settings, increase_only=False, **conn):  # pylint: disable=redefined-outer-name
    """
    The monitor's ``pgautofailover.*`` settings have these values (applied with
    ALTER SYSTEM and a reload, no restart). ``name`` is a label. With
    ``increase_only: True`` only values above the current ones are applied
    (the formula raises primary_demote_timeout before the nodes' timeouts
    change, and lowers it only after).

    .. code-block:: yaml

        pgfailover-monitor-settings:
          pgfailover.monitor_settings:
            - settings:
                health_check_period: 1000
                primary_demote_timeout: 20000
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"The monitor settings {', '.join(settings)} would be checked and set", pending)
    try:
        current = _module("monitor_settings", **conn)
        wanted = {
            key: int(value)
            for key, value in settings.items()
            if current.get(key) != int(value)
            and not (str(increase_only).lower() == "true" and int(value) < int(current.get(key) or 0))
        }
        ret["changes"] = {key: {"old": current.get(key), "new": value} for key, value in wanted.items()}
        if not ret["changes"]:
            ret["comment"] = "The monitor settings are as asked."
            return ret
        if __opts__["test"]:
            ret.update(result=None, comment=f"Would set {', '.join(ret['changes'])}.")
            return ret
        _module("set_monitor_settings", wanted, **conn)
    except (CommandExecutionError, SaltInvocationError, ValueError, AttributeError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"The monitor settings could not be set: {exc}")
    ret["comment"] = f"Set {', '.join(ret['changes'])} and reloaded the monitor."
    return ret


def config_value(name, value, **conn):
    """
    The local instance's pg_autoctl configuration key ``name`` (``section.option``)
    has ``value``; when it is set, the running service reloads its configuration.
    Secret keys are refused (they belong in .pgpass).

    .. code-block:: yaml

        pgfailover-node-partition-timeout:
          pgfailover.config_value:
            - name: timeout.network_partition_timeout
            - value: 2
            - pgdata: /var/lib/postgresql/pgaf/pg1
    """
    ret = _ret(name)
    if str(name).endswith(".password"):
        return _fail(ret, f"{name} holds a secret: it belongs in the service user's .pgpass, not in a state")
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"{name} would be set to {value}", pending)
    try:
        current = _module("config_get", name, **conn)
        if str(current) == str(value):
            ret["comment"] = f"{name} is {value}."
            return ret
        ret["changes"] = {name: {"old": current, "new": value}}
        if __opts__["test"]:
            ret.update(result=None, comment=f"{name} would be set to {value}.")
            return ret
        # After a restart of the service (a settings change), its pid file is
        # only trustworthy once PostgreSQL answers: `config set` signals it.
        _module("wait_postgres", timeout=120, **conn)
        _module("config_set", name, value, **conn)
        _module("reload_service", **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"{name} could not be set: {exc}")
    ret["comment"] = f"{name} set to {value}; the service reloaded its configuration."
    return ret


def converged(name, timeout=120, expect_nodes=None, **conn):
    """
    Wait until formation ``name`` has converged: every node healthy and in its
    assigned state (and at least ``expect_nodes`` nodes). Never reports
    changes; fails with the state table when ``timeout`` seconds pass. For
    orchestrations.

    .. code-block:: yaml

        pgfailover-wait-converged:
          pgfailover.converged:
            - name: default
            - timeout: 120
            - expect_nodes: 3
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Would wait until formation {name} converges", pending)
    try:
        if __opts__["test"]:
            nodes = _module("state", formation=name, **conn)
            done = _module("is_converged", nodes) and len(nodes) >= int(expect_nodes or 0)
            ret.update(
                result=True if done else None,
                comment=("Converged: " if done else "Would wait for: ")
                + _module("format_state_table", nodes),
            )
            return ret
        nodes = _module("wait_converged", timeout=timeout, formation=name, expect_nodes=expect_nodes, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"Formation {name} has not converged: {exc}")
    ret["comment"] = "Converged: " + _module("format_state_table", nodes)
    return ret


def monitor_ready(name, timeout=60, **conn):
    """
    Wait until the monitor at ``name`` (its data directory) accepts local
    connections. Never reports changes: a converged host stays quiet. For the
    step after the monitor's service starts.

    .. code-block:: yaml

        pgfailover-monitor-ready:
          pgfailover.monitor_ready:
            - name: /var/lib/postgresql/pgaf/monitor
    """
    ret = _ret(name)
    conn["pgdata"] = name
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Would wait for the monitor at {name} to answer", pending)
    try:
        _module("wait_postgres", timeout=timeout, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"The monitor at {name} does not answer: {exc}")
    ret["comment"] = f"The monitor at {name} answers."
    return ret


def ready_to_join(
    name, first_node, monitor_uri, timeout=300, formation=None, sslmode="require", sslrootcert=None, **conn
):
    """
    Before node ``name`` is created, wait for what its creation needs: for
    ``first_node`` (the node that starts a bare formation as its primary),
    the monitor at ``monitor_uri`` answering and holding ``formation``; for
    every other node a primary that accepts the replicator (its base backup
    needs that). This
    lets all nodes of a bare cluster run in one step, the first one becoming
    the primary. Nothing to wait for once the node exists. Never reports
    changes; fails after ``timeout`` seconds.

    .. code-block:: yaml

        pgfailover-node2-ready-to-join:
          pgfailover.ready_to_join:
            - name: node2
            - first_node: node1
            - monitor_uri: postgres://autoctl_node@mon:5431/pg_auto_failover?sslmode=require
            - pgdata: /var/lib/postgresql/pgaf/node2
    """
    ret = _ret(name)
    if __opts__["test"] and _pg_autoctl_missing():
        return _would(
            ret, f"Node {name} would wait until it can be created", "pg_autoctl is not installed yet"
        )
    try:
        if _module("is_created", **conn):
            ret["comment"] = f"Node {name} exists: nothing to wait for."
            return ret
        waits_for = "the monitor" if name == first_node else "a primary that accepts the replicator"
        if __opts__["test"]:
            ret.update(result=None, comment=f"Node {name} would wait for {waits_for}, then be created.")
            return ret
        remote = {key: value for key, value in conn.items() if key != "pgdata"}
        remote["monitor_uri"] = monitor_uri
        if name == first_node:
            _module("wait_monitor", timeout=timeout, formation=formation, **remote)
        else:
            _module(
                "wait_for_primary",
                timeout=timeout,
                formation=formation,
                sslmode=sslmode,
                sslrootcert=sslrootcert,
                **remote,
            )
    except (CommandExecutionError, SaltInvocationError) as exc:
        hint = "" if name == first_node else f" (node {first_node}, first in the pillar, starts a formation)"
        return _fail(ret, f"Node {name} cannot be created yet{hint}: {exc}")
    ret["comment"] = f"Node {name} can be created: {waits_for} answers."
    return ret


STABLE_STATES = ("single", "primary", "wait_primary", "secondary")


def node_ready(name, timeout=120, formation=None, **conn):
    """
    Wait until node ``name`` has reached a stable state (single, primary,
    wait_primary or secondary) and that state is the one assigned. Never
    reports changes.

    .. code-block:: yaml

        pgfailover-node-ready:
          pgfailover.node_ready:
            - name: node2
            - pgdata: /var/lib/postgresql/pgaf/node2
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Would wait for node {name} to reach a stable state", pending)
    try:
        node = _module(
            "wait_node_state", name, list(STABLE_STATES), timeout=timeout, formation=formation, **conn
        )
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"Node {name} is not ready: {exc}")
    ret["comment"] = f"Node {name} is {node['current_group_state']}."
    return ret


def _is_standby(conn):
    """True when the local instance is a standby, where roles come from the primary by replication."""
    # The service may have just restarted (a settings change): wait for PostgreSQL.
    _module("wait_postgres", timeout=120, **conn)
    return _module("in_recovery", **conn)


def role_present(name, password_pillar, owns_database=None, **conn):
    """
    Role ``name`` exists with LOGIN on the local primary, its password is the
    one at pillar key ``password_pillar`` (read here, never passed as an
    argument, never shown), and it owns ``owns_database`` when given. On a
    standby nothing is done: roles come from the primary by replication.

    .. code-block:: yaml

        pgfailover-app-role:
          pgfailover.role_present:
            - name: app
            - password_pillar: pgfailover:passwords:app
            - owns_database: appdb
    """
    ret = _ret(name)
    # Straight from the pillar data: Salt 3008's pillar.get masks values
    # outside templates.
    password = salt.utils.data.traverse_dict_and_list(__pillar__, password_pillar, None)
    if not password:
        return _fail(ret, f"pillar key {password_pillar} is empty: role {name} needs a password")
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Role {name} would be created or checked", pending, {"role": name})
    try:
        if _is_standby(conn):
            ret["comment"] = f"This node is a standby: role {name} comes from the primary."
            return ret
        current = _module("role", name, **conn)
        wanted = {}
        if current is None:
            wanted["role"] = {"old": None, "new": name}
        elif not _module("role_password_matches", name, password, **conn):
            wanted["password"] = {"old": SECRET, "new": SECRET}
        owner = owns_database and _module("database_owner", owns_database, **conn)
        if owns_database and owner != name:
            wanted["owner"] = {"old": owner, "new": name}
        ret["changes"] = wanted
        if not wanted:
            ret["comment"] = f"Role {name} is as asked."
            return ret
        if __opts__["test"]:
            ret.update(result=None, comment=f"Role {name} would be updated: {', '.join(wanted)}.")
            return ret
        if "role" in wanted or "password" in wanted:
            _module("set_role_password", name, password, create="role" in wanted, **conn)
        if "owner" in wanted:
            if owner is None:
                return _fail(ret, f"Database {owns_database} does not exist on this primary")
            _module("set_database_owner", owns_database, name, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"Role {name} could not be checked or set: {exc}")
    ret["comment"] = f"Role {name} was updated: {', '.join(ret['changes'])}."
    return ret


def empty_directory_absent(name):
    """
    Directory ``name`` is removed when it is empty. One that still holds
    files (an operator's) is left in place, and the comment says so: clean
    states remove what the formula created and nothing else.

    .. code-block:: yaml

        pgfailover-health-clean-config-dir:
          pgfailover.empty_directory_absent:
            - name: /etc/pgfailover
    """
    ret = _ret(name)
    if not os.path.isdir(name):
        ret["comment"] = f"{name} is absent."
        return ret
    left = os.listdir(name)
    if left:
        ret["comment"] = f"{name} is kept: it holds {len(left)} entries the formula did not create."
        return ret
    ret["changes"] = {"removed": name}
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be removed (empty).")
        return ret
    try:
        os.rmdir(name)
    except OSError as exc:
        ret["changes"] = {}
        return _fail(ret, f"{name} could not be removed: {exc.strerror}")
    ret["comment"] = f"{name} was removed (empty)."
    return ret


def settings_applied(name, names=None, **conn):
    """
    The local instance runs with its settings file: reloaded, and its unit
    ``name`` restarted only when one of ``names`` (the settings the formula
    manages) needs a restart. Meant to run ``onchanges`` of that file; reports
    what it did as changes.

    .. code-block:: yaml

        pgfailover-node-settings-applied:
          pgfailover.settings_applied:
            - name: pgautofailover-node-pg1
            - names: [shared_buffers]
            - pgdata: /var/lib/postgresql/pgaf/pg1
            - onchanges:
              - file: pgfailover-node-settings
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending or __opts__["test"]:
        comment = f"{conn.get('pgdata')} would reload its settings (unit {name} restarted if one needs it)"
        return _would(ret, comment, pending or "test mode", {"reloaded": True})
    try:
        restarted_for = _module("apply_settings", name, names=names, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"The settings of {conn.get('pgdata')} could not be applied: {exc}")
    ret["changes"] = {"reloaded": True, "restarted_for": restarted_for}
    ret["comment"] = f"{conn.get('pgdata')} reloaded its settings" + (
        f"; unit {name} restarted for {', '.join(restarted_for)}." if restarted_for else "."
    )
    return ret


def reloaded(name, **conn):
    """
    The local instance (``pgdata``) has reloaded its configuration files, for
    instance after a ``pg_hba.conf`` change (``onchanges``). ``name`` is a label.

    .. code-block:: yaml

        pgfailover-node-hba-reload:
          pgfailover.reloaded:
            - name: pg_hba.conf
            - pgdata: /var/lib/postgresql/pgaf/pg1
            - onchanges:
              - file: pgfailover-node-hba
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending or __opts__["test"]:
        return _would(
            ret, f"{conn.get('pgdata')} would reload ({name})", pending or "test mode", {"reloaded": True}
        )
    try:
        _module("reload_postgres", **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, f"{conn.get('pgdata')} could not reload ({name}): {exc}")
    ret.update(changes={"reloaded": True}, comment=f"{conn.get('pgdata')} reloaded ({name}).")
    return ret


def monitoring_role_present(name, connection_limit=5, read_formation=False, **conn):
    """
    Role ``name`` exists on the local primary for a local monitoring client
    (the health endpoint, the metrics exporter): LOGIN without a password,
    not a superuser, member of pg_monitor, at most ``connection_limit``
    sessions; with ``read_formation`` (on the monitor), allowed to read the
    monitor's node and formation tables. On a standby nothing is done: roles
    come from the primary by replication.

    .. code-block:: yaml

        pgfailover-health-role:
          pgfailover.monitoring_role_present:
            - name: pgfailover_health
            - connection_limit: 5
            - pgdata: /var/lib/postgresql/pgaf/pg1
    """
    ret = _ret(name)
    pending = _not_there_yet(conn)
    if pending:
        return _would(ret, f"Monitoring role {name} would be created or checked", pending, {"role": name})
    try:
        if _is_standby(conn):
            ret["comment"] = f"This node is a standby: role {name} comes from the primary."
            return ret
        dbname = "pg_auto_failover" if read_formation else "postgres"
        current = _module("role", name, dbname=dbname, **conn)
        wanted = {"login": True, "superuser": False, "password_set": False, "pg_monitor": True}
        wanted["connection_limit"] = int(connection_limit)
        if read_formation:
            wanted["reads_formation"] = True
        if current is None:
            ret["changes"] = {"role": {"old": None, "new": name}}
        else:
            ret["changes"] = {
                key: {"old": current[key], "new": value}
                for key, value in wanted.items()
                if current[key] != value
            }
        if not ret["changes"]:
            ret["comment"] = f"Monitoring role {name} is as asked."
            return ret
        if __opts__["test"]:
            ret.update(
                result=None, comment=f"Monitoring role {name} would be set: {', '.join(ret['changes'])}."
            )
            return ret
        _module(
            "set_monitoring_role",
            name,
            connection_limit=connection_limit,
            read_formation=read_formation,
            **conn,
        )
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"Monitoring role {name} could not be checked or set: {exc}")
    ret["comment"] = f"Monitoring role {name} was set: {', '.join(ret['changes'])}."
    return ret


def certificates_valid(name, ca_file, server_cert, server_key, hostnames=(), user=None):
    """
    The certificate files of ``ssl: {mode: ca}`` on this host (``name``, for
    messages) can serve: present, the key matching the certificate, valid
    now, issued by the CA, naming every one of ``hostnames``, readable by
    the service ``user`` when given. Checked before
    pg_autoctl is given them; changes nothing. In test mode a problem is a
    warning (result None): the files may be put in place after the packages.

    .. code-block:: yaml

        pgfailover-certificates:
          pgfailover.certificates_valid:
            - name: pg1
            - ca_file: /etc/pgfailover-tls/ca.crt
            - server_cert: /etc/pgfailover-tls/server.crt
            - server_key: /etc/pgfailover-tls/server.key
            - hostnames: [pg1]
            - user: postgres
    """
    ret = _ret(name)
    found = __salt__["pgfailover_tls.problems"](ca_file, server_cert, server_key, list(hostnames), user)
    if not found:
        ret["comment"] = (
            f"The certificate files on {name} can serve {', '.join(hostnames) or 'the instance'}."
        )
        return ret
    comment = f"Certificate files on {name} refused: " + "; ".join(found)
    if __opts__["test"]:
        ret.update(result=None, comment=comment)
        return ret
    return _fail(ret, comment)
