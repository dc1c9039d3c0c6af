"""
Unit tests of the backup pieces that need no host: the pillar's backup
section, target times, the refusals of a restore (pgBackRest's answers given
as it prints them), its info summary, and the SSH forced command (a real
shell running the rendered script, with a stand-in pgbackrest that prints its
arguments).
"""

import datetime
import json
import os
import pathlib
import subprocess

import jinja2
import pytest
import yaml
from salt.exceptions import CommandExecutionError, SaltInvocationError

from helpers.bad_pillars import good
from helpers.source import load
from lab.paths import REPO

validator = load("_modules/pgfailover_pillar.py", "pgfailover_pillar")
backup = load("_modules/pgfailover_backup.py", "pgfailover_backup")
pgfailover = load("_modules/pgfailover.py", "pgfailover")
with open(os.path.join(REPO, "pgfailover", "parameters", "defaults.yaml")) as f:
    PARAMETERS = yaml.safe_load(f)["values"]


def validate(section, passwords=None, settings=None):
    cluster = good()
    cluster["backup"] = section
    cluster["passwords"].update(passwords or {})
    if settings:
        cluster["postgresql"]["settings"].update(settings)
    return validator.validate(cluster, PARAMETERS, "Debian", "12")


def test_a_backup_section_with_a_repository_host_is_valid():
    assert validate({"minion": "bak"}) == []
    assert validate({"minion": "mon", "schedule": {"full": None, "diff": "daily"}}) == []
    full = {
        "minion": "bak", "hostname": "bak.example.net", "path": "/srv/pgbackrest",
        "retention": {"full": 4, "diff": 14}, "compress": {"type": "zst", "level": 3},
        "archive_timeout": 30, "encryption": True, "from_standby": False, "process_max": 4,
    }  # fmt: skip
    assert validate(full, passwords={"backup": "a-passphrase-of-24-chars"}) == []


@pytest.mark.parametrize(
    ("section", "passwords", "settings", "named"),
    [
        ({}, None, None, "pillar key pgfailover:backup:minion is missing"),
        (
            {"minion": "pg1"},
            None,
            None,
            "pillar key pgfailover:backup:minion is 'pg1', which runs a PostgreSQL",
        ),
        (
            {"minion": "bak", "encryption": True},
            None,
            None,
            "pillar key pgfailover:passwords:backup is missing",
        ),
        ({"minion": "bak", "encryption": True}, {"backup": "short"}, None, "passwords:backup is too short"),
        ({"minion": "bak", "retention": {"full": 0}}, None, None, "backup:retention:full is 0; allowed"),
        ({"minion": "bak", "schedule": {"full": "Sun; rm -rf /"}}, None, None, "backup:schedule:full is"),
        (
            {"minion": "bak", "compress": {"type": "xz"}},
            None,
            None,
            "backup:compress:type is 'xz'; allowed: lz4",
        ),
        ({"minion": "bak", "archive_timeout": None}, None, None, "backup:archive_timeout is None; allowed"),
        ({"minion": "bak", "path": "relative/dir"}, None, None, "backup:path is 'relative/dir'; allowed"),
        ({"minion": "bak", "retain": 2}, None, None, "pillar key pgfailover:backup:retain is unknown"),
        ({"minion": "bak"}, None, {"archive_command": "cp %p /x"}, "settings:archive_command is set, but"),
        ("bak", None, None, "pillar key pgfailover:backup must be a mapping"),
    ],
)
def test_a_bad_backup_section_is_refused_naming_the_key(section, passwords, settings, named):
    problems = validate(section, passwords, settings)
    assert any(named in problem for problem in problems), problems


def test_the_passphrase_never_appears_in_a_refusal():
    problems = validate({"minion": "bak", "encryption": True}, passwords={"backup": "tiny-secret"})
    assert problems and not any("tiny-secret" in problem for problem in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01 10:15:00+00", "2026-12-01T10:15:00+00:00"),
        ("2026-12-01T10:15:00Z", "2026-12-01T10:15:00+00:00"),
        ("2026-12-01 12:15:00.250+02:00", "2026-12-01T10:15:00.250000+00:00"),
        ("2026-12-01 05:15:00-0500", "2026-12-01T10:15:00+00:00"),
    ],
)
def test_target_times_are_read_with_their_zone_as_utc(text, expected):
    assert backup.parse_target_time(text).isoformat() == expected


@pytest.mark.parametrize(
    "text", ["2026-12-01 10:15:00", "tomorrow", "2026-02-30 10:00:00+00", "1 day ago+00"]
)
def test_a_target_time_without_zone_or_impossible_is_refused(text):
    with pytest.raises(SaltInvocationError, match="target_time"):
        backup.parse_target_time(text)


def info_json(backups, status=(0, "ok")):
    """``pgbackrest info --output=json`` as pgBackRest 2.45 prints it, trimmed to what is read."""
    entries = [
        {
            "label": label, "type": kind, "timestamp": {"start": stop - 5, "stop": stop},
            "info": {"size": 30_000_000, "repository": {"size": 6_000_000, "delta": 6_000_000}},
            "archive": {"start": "000000010000000000000007", "stop": "000000010000000000000007"},
            "prior": None, "error": False,
        }
        for label, kind, stop in backups
    ]  # fmt: skip
    stanza = {
        "name": "default", "status": {"code": status[0], "message": status[1]}, "cipher": "aes-256-cbc",
        "backup": entries, "archive": [{"database": {"id": 1}, "min": "0000000100000000000000", "max": "00"}],
    }  # fmt: skip
    return json.dumps([stanza])


@pytest.fixture
def with_info(monkeypatch):
    """The module with pgBackRest's answer replaced by ``answer`` (a string, or an exception to raise)."""
    answer = {}

    def pgbackrest(settings, args, timeout=None):
        if isinstance(answer["value"], Exception):
            raise answer["value"]
        return answer["value"]

    monkeypatch.setattr(backup, "_pgbackrest", pgbackrest)
    monkeypatch.setattr(backup, "__salt__", {"grains.get": lambda *a: {}}, raising=False)
    return answer


def epoch(text):
    return int(datetime.datetime.fromisoformat(text).timestamp())


def test_info_is_summarised_with_utc_times_and_the_oldest_restorable_time(with_info):
    stop = epoch("2026-11-30T05:44:39+00:00")
    with_info["value"] = info_json(
        [("20261130-054434F", "full", stop), ("20261130-054434F_I", "incr", stop + 60)]
    )
    summary = backup.info()
    assert summary["oldest_restorable"] == "2026-11-30T05:44:39+00:00"
    assert [b["type"] for b in summary["backups"]] == ["full", "incr"]
    assert summary["backups"][0]["database_bytes"] == 30_000_000 and summary["cipher"] == "aes-256-cbc"


def test_a_restore_is_refused_for_each_reason_before_any_change(with_info):
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    stop = now - datetime.timedelta(hours=1)
    with_info["value"] = info_json([("20261130-054434F", "full", int(stop.timestamp()))])
    at = (now - datetime.timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S+00")
    assert backup.restore_refusals(target_time=at) == []
    assert backup.restore_refusals(latest=True) == []
    before = (stop - datetime.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S+00")
    early = backup.restore_refusals(target_time=before)
    assert "before the end of the oldest backup (20261130-054434F" in early[0]
    assert "is in the future" in backup.restore_refusals(target_time="2999-01-01 00:00:00+00")[0]
    assert "exactly one of" in backup.restore_refusals(target_name="x", latest=True)[0]
    assert "not allowed" in backup.restore_refusals(target_name="x'; DROP")[0]
    with_info["value"] = info_json([], status=(2, "no valid backups"))
    assert "has no backup to restore from (no valid backups)" in backup.restore_refusals(latest=True)[0]
    with_info["value"] = info_json([], status=(99, "other"))
    assert (
        "the repository cannot be read: pgBackRest reports stanza default as 'other' (code 99)"
        in (backup.restore_refusals(latest=True)[0])
    )
    with_info["value"] = CommandExecutionError(
        "pgbackrest info failed (exit 56): ERROR: [056]: unable to find host"
    )
    assert "the repository cannot be read: pgbackrest info failed" in backup.restore_refusals(latest=True)[0]


@pytest.fixture
def forced_command(tmp_path):
    """The rendered forced command, with a stand-in pgbackrest that prints the arguments it got."""
    stand_in = tmp_path / "pgbackrest"
    stand_in.write_text('#!/bin/sh\nprintf "ran:"; printf " [%s]" "$@"; echo\n')
    stand_in.chmod(0o755)
    with open(os.path.join(REPO, "pgfailover", "files", "pgbackrest_ssh.sh.jinja")) as f:
        script = jinja2.Template(f.read()).render(pgbackrest=str(stand_in))
    path = tmp_path / "pgbackrest-ssh"
    path.write_text(script)
    path.chmod(0o755)

    def run(original):
        env = {"PATH": "/usr/bin:/bin", "SSH_ORIGINAL_COMMAND": original}
        return subprocess.run([str(path)], env=env, capture_output=True, text=True, timeout=10)

    return run, str(stand_in)


def test_the_forced_command_runs_pgbackrest_remote_commands(forced_command):
    run, stand_in = forced_command
    remote = (
        "--exec-id=1-ab --log-level-console=off --pg1-path=/var/lib/pg --stanza=default archive-push:remote"
    )
    for prefix in ("pgbackrest", stand_in):
        result = run(f"{prefix} {remote}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ran: " + " ".join(f"[{word}]" for word in remote.split())


@pytest.mark.parametrize(
    "original",
    [
        "",
        "id",
        "sh -c id",
        "pgbackrest info",
        "pgbackrest --stanza=x expire",
        "pgbackrest info; id",
        "pgbackrest $(id) backup:remote",
        "pgbackrest `id` backup:remote",
        "pgbackrest * backup:remote",
        "pgbackrest --x='a b' backup:remote",
        "pgbackrest a backup:remote\nid",
        "pgbackrest-evil --x backup:remote",
    ],
)
def test_the_forced_command_refuses_anything_else(forced_command, original):
    run, _ = forced_command
    result = run(original)
    assert result.returncode != 0 and "ran:" not in result.stdout, (original, result.stdout)
    assert "only runs pgBackRest's remote side" in result.stderr


def test_set_aside_moves_the_data_and_pg_autoctl_files_under_its_label(tmp_path, monkeypatch):
    pgdata = tmp_path / "pgaf" / "pg2"
    home = tmp_path / "home"
    files = [
        home / ".config" / "pg_autoctl" / str(pgdata).lstrip("/"),
        home / ".local" / "share" / "pg_autoctl" / str(pgdata).lstrip("/"),
    ]
    for path in [pgdata, *files]:
        path.mkdir(parents=True)
        (path / "kept").write_text("row")
    stopped = []
    defaults = {"config.get": lambda key, default=None: default}
    monkeypatch.setattr(pgfailover, "__salt__", defaults, raising=False)
    monkeypatch.setattr(
        backup,
        "__salt__",
        {
            "grains.get": lambda *a: {},
            "service.stop": stopped.append,
            "service.status": lambda unit: False,
            "pgfailover.set_aside_instance": pgfailover.set_aside_instance,
        },
        raising=False,
    )
    moves = backup.set_aside(str(pgdata), "pgautofailover-node-pg2", label="before-rebuild", home=str(home))
    assert stopped == ["pgautofailover-node-pg2"]
    assert sorted(moves) == sorted(str(p) for p in [pgdata, *files])
    for before, after in moves.items():
        assert not os.path.exists(before)
        assert after.startswith(f"{before}.before-rebuild-")
        assert pathlib.Path(after, "kept").read_text() == "row"


@pytest.mark.parametrize("label", ["", "Before", "before rebuild", "../x", "before-", 3])
def test_set_aside_refuses_a_bad_label_before_stopping_anything(label, monkeypatch):
    monkeypatch.setattr(backup, "__salt__", {}, raising=False)  # any call to Salt would fail
    refused = "label=.* is not allowed: lower-case letters and dashes"
    with pytest.raises(SaltInvocationError, match=refused):
        backup.set_aside("/var/lib/postgresql/pgaf/pg2", "pgautofailover-node-pg2", label=label)
