"""
pgBackRest for a pg_auto_failover formation: the repository's contents, backups,
archive checks, and the restore of a node's data directory to a point in time.

pgBackRest runs as the service user (``postgres``) with its configuration file
(``/etc/pgbackrest/pgbackrest.conf``, written by the formula), on the repository
host (backups, information) or on a node's host (archiving, restore). The
formula sets a ``pgfailover_backup`` grain with this host's values; keyword
arguments override it:

user, home
    the service user and its HOME
stanza
    the stanza: the formation's name
pgbackrest
    path of the pgbackrest binary
bindir
    PostgreSQL's bin directory (restore: pg_ctl, psql, pg_controldata)
socket_dir
    PostgreSQL's socket directory
runtime_dir
    where the restore writes the log of its recovery

Secrets never go on a command line: the repository passphrase lives in the
repository host's configuration file (0640, the service user's).
"""

import datetime
import json
import os
import re
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pgfailover_backup"

DEFAULTS = {
    "user": "postgres",
    "home": "/var/lib/postgresql",
    "stanza": "default",
    "pgbackrest": "/usr/bin/pgbackrest",
    "bindir": "/usr/lib/postgresql/15/bin",
    "socket_dir": "/run/postgresql",
    "runtime_dir": "/run/pgfailover",
}
BACKUP_TYPES = ("full", "diff", "incr")
# pgBackRest's stanza status codes (info --output=json) that mean it is not created.
STANZA_MISSING = (1, 3)
# ... and those of a stanza whose backups can be read: ok, no valid backups yet.
STANZA_READABLE = (0, 2)
# Settings a restore by pgBackRest writes into postgresql.auto.conf, reset once
# the restored instance is promoted: a standby cloned from it must not inherit
# a recovery target. synchronous_standby_names names standbys that are gone.
RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_name",
    "recovery_target_xid",
    "recovery_target_lsn",
    "recovery_target_action",
    "recovery_target_timeline",
    "recovery_target_inclusive",
    "synchronous_standby_names",
    "primary_conninfo",
    "primary_slot_name",
)
# The old formation's slots: they would hold WAL for standbys that are gone.
DROP_OLD_SLOTS = (
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
    "WHERE slot_name LIKE 'pgautofailover\\_standby\\_%';"
)
_RESTORE_POINT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,63}")
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)\s*(Z|[+-]\d{2}(?::?\d{2})?)")


def __virtual__():
    return __virtualname__


def _settings(kwargs):
    unknown = sorted(k for k in kwargs if k not in DEFAULTS and not k.startswith("__"))
    if unknown:
        raise SaltInvocationError(
            f"unknown argument(s) {', '.join(unknown)}; options are {', '.join(DEFAULTS)}"
        )
    grain = __salt__["grains.get"]("pgfailover_backup", {}) or {}
    return {key: kwargs.get(key) or grain.get(key) or default for key, default in DEFAULTS.items()}


def _as_service_user(settings, argv, timeout=None, stdin=None):
    if os.geteuid() == 0 and settings["user"] != "root":
        argv = ["runuser", "-u", settings["user"], "--", *argv]
    return __salt__["cmd.run_all"](
        argv,
        env={"HOME": settings["home"], "PATH": f"{settings['bindir']}:/usr/sbin:/usr/bin:/sbin:/bin"},
        clean_env=True,
        cwd=settings["home"],
        python_shell=False,
        ignore_retcode=True,
        output_loglevel="trace",
        timeout=timeout,
        stdin=stdin,
    )


def _problem_lines(result):
    """pgBackRest's ERROR lines (it prints them on stdout or stderr), or the last line it printed."""
    output = result["stdout"] + "\n" + result["stderr"]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line]
    return " | ".join(errors or lines[-1:]) or "no output"


def _pgbackrest(settings, args, timeout=None):
    """Run ``pgbackrest --stanza=STANZA ARGS`` as the service user; its stdout, or a clear error."""
    binary = settings["pgbackrest"]
    if not os.access(binary, os.X_OK):
        raise CommandExecutionError(f"pgbackrest is not installed at {binary}: apply pgfailover.backup first")
    result = _as_service_user(settings, [binary, f"--stanza={settings['stanza']}", *args], timeout=timeout)
    if result["retcode"] != 0:
        raise CommandExecutionError(
            f"pgbackrest {args[-1]} failed (exit {result['retcode']}): {_problem_lines(result)}"
        )
    return result["stdout"]


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()


def _summary(stanza):
    """One stanza of ``pgbackrest info --output=json``, in the terms of this module."""
    backups = [
        {
            "label": backup["label"],
            "type": backup["type"],
            "start": _utc(backup["timestamp"]["start"]),
            "stop": _utc(backup["timestamp"]["stop"]),
            "database_bytes": backup["info"]["size"],
            "repository_bytes": backup["info"]["repository"]["delta"],
            "wal_start": backup["archive"]["start"],
            "wal_stop": backup["archive"]["stop"],
            "prior": backup.get("prior"),
            "error": backup.get("error", False),
        }
        for backup in stanza.get("backup", [])
    ]
    archives = [
        {"database_id": a["database"]["id"], "min": a.get("min"), "max": a.get("max")}
        for a in stanza.get("archive", [])
    ]
    return {
        "stanza": stanza["name"],
        "status": stanza["status"]["message"],
        "status_code": stanza["status"]["code"],
        "cipher": stanza.get("cipher"),
        "backups": backups,
        "archive": archives,
        "oldest_restorable": backups[0]["stop"] if backups else None,
        "newest_backup": backups[-1]["stop"] if backups else None,
    }


def info(**kwargs):
    """
    The stanza's backups as pgBackRest reports them (``info --output=json``):
    status, each backup's label, type, start and stop times (UTC), database
    and repository sizes and WAL range, the archive's WAL range, and the
    oldest time a restore can reach. Works on the repository host and on any
    node's host (through the repository host).

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.info
        salt pg1 pgfailover_backup.info stanza=default
    """
    settings = _settings(kwargs)
    output = _pgbackrest(settings, ["--output=json", "info"], timeout=120)
    try:
        stanzas = json.loads(output)
    except ValueError as exc:
        raise CommandExecutionError(f"pgbackrest info did not print JSON: {output[:200]!r}") from exc
    found = [stanza for stanza in stanzas if stanza.get("name") == settings["stanza"]]
    if not found:
        raise CommandExecutionError(f"pgbackrest info does not list stanza {settings['stanza']}")
    return _summary(found[0])


def stanza_exists(**kwargs):
    """
    True when the stanza exists in the repository (with or without backups).

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.stanza_exists
    """
    return info(**kwargs)["status_code"] not in STANZA_MISSING


def create_stanza(**kwargs):
    """
    Create the stanza (idempotent: pgBackRest accepts an existing, matching
    one); the current primary must be reachable.

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.create_stanza
    """
    _pgbackrest(_settings(kwargs), ["stanza-create"], timeout=300)
    return True


def check(**kwargs):
    """
    ``pgbackrest check``: the primary switches to a new WAL file and pgBackRest
    waits for it in the repository. True, or an error saying what failed.

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.check
        salt pg2 pgfailover_backup.check
    """
    _pgbackrest(_settings(kwargs), ["check"], timeout=300)
    return True


def backup(type="incr", timeout=86400, **kwargs):  # pylint: disable=redefined-builtin
    """
    Take a backup now (``full``, ``diff`` or ``incr``; pgBackRest makes an
    ``incr`` or ``diff`` full when no full backup exists) and return it as
    :py:func:`info` lists it. Runs on the repository host.

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.backup
        salt bak pgfailover_backup.backup type=full
    """
    if type not in BACKUP_TYPES:
        raise SaltInvocationError(f"type={type!r} is not allowed; use one of: {', '.join(BACKUP_TYPES)}")
    settings = _settings(kwargs)
    _pgbackrest(settings, [f"--type={type}", "backup"], timeout=timeout)
    return info(**kwargs)["backups"][-1]


# -- restore ------------------------------------------------------------------


def parse_target_time(value):
    """
    A recovery target time as an aware UTC datetime, from
    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` and a zone (``Z``, ``+00``, ``+02:00``).
    A time without a zone is refused: the hosts' zones may differ.

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.parse_target_time '2026-12-01 10:15:00+00'
    """
    match = _TIME.fullmatch(str(value).strip())
    if not match:
        raise SaltInvocationError(
            f"target_time {value!r} is not a time with its zone; use 'YYYY-MM-DD HH:MM:SS+00' (or another "
            "offset, or Z)"
        )
    day, clock, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    zone = zone if len(zone) != 3 else zone + ":00"
    zone = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.datetime.fromisoformat(f"{day}T{clock}{zone}").astimezone(datetime.UTC)
    except ValueError as exc:
        raise SaltInvocationError(f"target_time {value!r} is not a valid time: {exc}") from None


def _target(target_time, target_name, latest):
    chosen = [key for key, value in (("target_time", target_time), ("target_name", target_name)) if value]
    chosen += ["latest"] if latest else []
    if len(chosen) != 1:
        raise SaltInvocationError(
            "give exactly one of target_time, target_name and latest=True"
            + (f" (given: {', '.join(chosen)})" if chosen else "")
        )
    if target_name and not _RESTORE_POINT_NAME.fullmatch(str(target_name)):
        raise SaltInvocationError(
            f"target_name {target_name!r} is not allowed; use letters, digits and _ . : - (63 at most)"
        )
    return chosen[0]


def restore_refusals(target_time=None, target_name=None, latest=False, **kwargs):
    """
    Why a restore to this target cannot be done now, as sentences (empty: it
    can): the repository cannot be read, it holds no backup, the target time
    is in the future or before the end of the oldest backup. Changes nothing.

    CLI Example:

    .. code-block:: bash

        salt bak pgfailover_backup.restore_refusals target_time='2026-12-01 10:15:00+00'
        salt bak pgfailover_backup.restore_refusals latest=True
    """
    try:
        _target(target_time, target_name, latest)
        when = parse_target_time(target_time) if target_time else None
    except SaltInvocationError as exc:
        return [str(exc)]
    try:
        summary = info(**kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return [f"the repository cannot be read: {exc}"]
    if summary["status_code"] not in STANZA_READABLE:
        return [
            f"the repository cannot be read: pgBackRest reports stanza {summary['stanza']} as "
            f"'{summary['status']}' (code {summary['status_code']})"
        ]
    backups = [backup for backup in summary["backups"] if not backup["error"]]
    if not backups:
        return [f"stanza {summary['stanza']} has no backup to restore from ({summary['status']})"]
    if when is None:
        return []
    now = datetime.datetime.now(datetime.UTC)
    oldest = datetime.datetime.fromisoformat(backups[0]["stop"])
    if when > now:
        return [f"target_time {target_time} is in the future (it is now {now.isoformat(timespec='seconds')})"]
    if when < oldest:
        return [
            f"target_time {target_time} is before the end of the oldest backup ({backups[0]['label']}, "
            f"{oldest.isoformat(timespec='seconds')}): no backup can be recovered to it"
        ]
    return []


def set_aside(pgdata, unit, label="before-restore", **kwargs):
    """
    Stop the node's unit and move its data directory and pg_autoctl's files
    for it aside (``<path>.<label>-<UTC time>``; ``label`` is lower-case
    letters and dashes, ``before-restore`` by default, ``before-rebuild`` for
    a clone), so a restore or a clone starts from nothing and nothing is
    lost. The moves are ``pgfailover.set_aside_instance``'s, once the unit is
    stopped. Returns the moves made (none when the data directory is already
    gone).

    CLI Example:

    .. code-block:: bash

        salt pg1 pgfailover_backup.set_aside /var/lib/postgresql/pgaf/pg1 pgautofailover-node-pg1
        salt pg2 pgfailover_backup.set_aside /srv/pgaf/pg2 pgautofailover-node-pg2 label=before-rebuild
    """
    if not isinstance(label, str) or not re.fullmatch(r"[a-z]+(-[a-z]+)*", label):
        raise SaltInvocationError(f"label={label!r} is not allowed: lower-case letters and dashes")
    settings = _settings(kwargs)
    __salt__["service.stop"](unit)
    if __salt__["service.status"](unit):
        raise CommandExecutionError(f"unit {unit} did not stop: {pgdata} is not moved")
    return __salt__["pgfailover.set_aside_instance"](label=label, pgdata=pgdata, home=settings["home"])


def _psql(settings, port, sql):
    argv = [
        os.path.join(settings["bindir"], "psql"), "--no-psqlrc", "-XAt", "-v", "ON_ERROR_STOP=1",
        "-h", settings["socket_dir"], "-p", str(port), "-d", "postgres",
    ]  # fmt: skip
    result = _as_service_user(settings, argv, stdin=sql, timeout=60)
    if result["retcode"] != 0:
        raise CommandExecutionError(f"psql failed: {result['stderr'].strip()}")
    return result["stdout"].strip()


def _log_tail(path, lines=15):
    try:
        with open(path, encoding="utf-8", errors="replace") as log_file:
            return " | ".join(line.strip() for line in log_file.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _recover(settings, pgdata, port, timeout):
    """
    Start the restored instance on its socket only, wait until recovery
    reached the target and promoted it, reset the recovery settings, stop it
    cleanly: pg_autoctl then takes a shut-down primary's data directory.
    """
    pg_ctl = os.path.join(settings["bindir"], "pg_ctl")
    log_path = os.path.join(settings["runtime_dir"], f"restore-{os.path.basename(pgdata)}.log")
    options = (
        f"-c listen_addresses='' -c port={int(port)} -c unix_socket_directories={settings['socket_dir']}"
    )
    started = _as_service_user(
        settings, [pg_ctl, "-D", pgdata, "-l", log_path, "-w", "-t", str(timeout), "-o", options, "start"]
    )
    if started["retcode"] != 0:
        raise CommandExecutionError(f"the restored instance did not start or recover: {_log_tail(log_path)}")
    try:
        deadline = time.monotonic() + timeout
        while _psql(settings, port, "SELECT pg_is_in_recovery();") != "f":
            if time.monotonic() > deadline:
                raise CommandExecutionError(f"recovery did not end within {timeout} s: {_log_tail(log_path)}")
            time.sleep(1)
        _psql(settings, port, "".join(f"ALTER SYSTEM RESET {name};\n" for name in RECOVERY_SETTINGS))
        _psql(settings, port, DROP_OLD_SLOTS)
        timeline = _psql(settings, port, "SELECT timeline_id FROM pg_control_checkpoint();")
    finally:
        _as_service_user(settings, [pg_ctl, "-D", pgdata, "-m", "fast", "-w", "-t", "120", "stop"])
    return int(timeline) if timeline.isdigit() else None


def restore(pgdata, port=5432, target_time=None, target_name=None, latest=False, timeout=86400, **kwargs):
    """
    Restore a node's data directory from the repository and recover it to
    the target: ``target_time`` (with its zone), ``target_name`` (a restore
    point) or ``latest=True`` (the end of the archive); it is then promoted,
    its recovery settings reset and left shut down, for pg_autoctl to
    register it as a new formation's primary. The data directory must be
    empty or absent (see :py:func:`set_aside`). Returns the target and the
    new timeline.

    CLI Example:

    .. code-block:: bash

        salt pg1 pgfailover_backup.restore /var/lib/postgresql/pgaf/pg1 target_time='2026-12-01 10:15:00+00'
    """
    settings = _settings(kwargs)
    kind = _target(target_time, target_name, latest)
    if os.path.isdir(pgdata) and os.listdir(pgdata):
        raise CommandExecutionError(f"{pgdata} is not empty: set it aside first (nothing was restored)")
    if kind == "target_time":
        target = parse_target_time(target_time).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        target_args = ["--type=time", f"--target={target}"]
    elif kind == "target_name":
        target, target_args = target_name, ["--type=name", f"--target={target_name}"]
    else:
        target, target_args = "latest", ["--type=default"]
    if target_args[0] != "--type=default":
        target_args.append("--target-action=promote")
    os.makedirs(pgdata, mode=0o700, exist_ok=True)
    __salt__["file.chown"](pgdata, settings["user"], settings["user"])
    restore_args = [f"--pg1-path={pgdata}", "--target-timeline=latest", *target_args, "restore"]
    _pgbackrest(settings, restore_args, timeout=timeout)
    timeline = _recover(settings, pgdata, port, timeout)
    return {"pgdata": pgdata, "target": target, "timeline": timeline}


# -- identity for the Salt mine ------------------------------------------------


def identity(**kwargs):
    """
    This host's SSH identity for pgBackRest, as the formula publishes it in
    the Salt mine: the service user's public key and the host's ed25519 key
    (for the other hosts' known_hosts). Empty values when not made yet.

    CLI Example:

    .. code-block:: bash

        salt '*' pgfailover_backup.identity
    """
    settings = _settings(kwargs)

    def read(path):
        try:
            with open(path, encoding="ascii") as key:
                return key.read().strip()
        except OSError:
            return ""

    return {
        "user_key": read(os.path.join(settings["home"], ".ssh", "id_ed25519.pub")),
        "host_key": " ".join(read("/etc/ssh/ssh_host_ed25519_key.pub").split()[:2]),
    }
