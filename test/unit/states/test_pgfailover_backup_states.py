"""
The backup state module (_states/pgfailover_backup.py) over its execution
functions and Salt's mine kept in memory: test mode, one change then none, and
the reason when it cannot.
"""

import pytest
from salt.exceptions import CommandExecutionError

from helpers.source import load

states = load("_states/pgfailover_backup.py", "pgfailover_backup_states")

IDENTITY = {"user_key": "ssh-ed25519 AAAA postgres@pg1", "host_key": "ssh-ed25519 BBBB"}


class Host:
    """This host's SSH identity, the master's mine, and the repository's stanzas."""

    def __init__(self):
        self.identity = dict(IDENTITY)
        self.mine = {}
        self.master_takes = True
        self.stanzas = set()
        self.create_fails = None
        self.checks = 0

    def functions(self):
        def create_stanza(stanza, **settings):
            if self.create_fails:
                raise CommandExecutionError(self.create_fails)
            self.stanzas.add(stanza)

        def check(stanza, **settings):
            self.checks += 1

        def send(function, **settings):
            if self.master_takes:
                self.mine["pg1"] = dict(self.identity)
            return self.master_takes

        return {
            "pgfailover_backup.identity": lambda **settings: dict(self.identity),
            "mine.get": lambda tgt, function: {tgt: self.mine[tgt]} if tgt in self.mine else {},
            "mine.send": send,
            "pgfailover_backup.stanza_exists": lambda stanza, **settings: stanza in self.stanzas,
            "pgfailover_backup.create_stanza": create_stanza,
            "pgfailover_backup.check": check,
        }


@pytest.fixture
def host():
    return Host()


@pytest.fixture
def opts(monkeypatch, host):
    options = {"test": False}
    monkeypatch.setattr(states, "__salt__", host.functions(), raising=False)
    monkeypatch.setattr(states, "__opts__", options, raising=False)
    monkeypatch.setattr(states, "__grains__", {"id": "pg1"}, raising=False)
    return options


def test_identity_published_predicts_publishes_once_and_republishes_a_new_key(host, opts):
    opts["test"] = True
    predicted = states.identity_published("identity")
    assert predicted["result"] is None and host.mine == {}
    opts["test"] = False
    published = states.identity_published("identity")
    assert published["changes"] == {"published": {"old": False, "new": True}} and host.mine["pg1"] == IDENTITY
    again = states.identity_published("identity")
    assert again["changes"] == {} and again["comment"] == "The SSH identity is published in the Salt mine."
    host.identity["host_key"] = "ssh-ed25519 CCCC"  # the host was rebuilt
    renewed = states.identity_published("identity")
    assert renewed["changes"] == {"published": {"old": True, "new": True}}
    assert host.mine["pg1"]["host_key"] == "ssh-ed25519 CCCC"


def test_identity_published_names_a_missing_key_and_a_master_that_refused(host, opts):
    host.identity["user_key"] = ""
    missing = states.identity_published("identity")
    assert missing["result"] is False
    assert missing["comment"] == "Cannot publish the SSH identity: the service user's key does not exist."
    opts["test"] = True  # a dry run before the keys are made
    assert states.identity_published("identity")["result"] is None
    opts["test"] = False
    host.identity["user_key"] = IDENTITY["user_key"]
    host.master_takes = False
    refused = states.identity_published("identity")
    assert refused["result"] is False and refused["changes"] == {}
    assert refused["comment"] == "The Salt master did not take the SSH identity."


def test_stanza_present_creates_and_checks_once(host, opts):
    opts["test"] = True
    predicted = states.stanza_present("default")
    assert predicted["result"] is None and predicted["changes"] == {"stanza": {"old": None, "new": "default"}}
    assert host.stanzas == set()
    opts["test"] = False
    created = states.stanza_present("default")
    assert created["changes"] == {"stanza": {"old": None, "new": "default"}} and host.checks == 1
    again = states.stanza_present("default")
    assert again["changes"] == {} and again["comment"] == "Stanza default exists." and host.checks == 1


def test_stanza_present_reports_why_it_could_not_create_and_changes_nothing(host, opts):
    host.create_fails = "no primary answers: the stanza needs one"
    failed = states.stanza_present("default")
    assert failed["result"] is False and failed["changes"] == {}
    assert failed["comment"] == (
        "Stanza default could not be created or checked: no primary answers: the stanza needs one"
    )
    assert host.stanzas == set() and host.checks == 0
