"""
The rounds of an online SSL change (_modules/pgfailover_ssl.py): at every
step, each client's sslmode accepts what every server serves, whichever
instance changed last.
"""

import itertools

import pytest

from helpers.source import load

ssl_plan = load("_modules/pgfailover_ssl.py", "pgfailover_ssl")

CA = {"ca_file": "/etc/pgf/ca.crt", "server_cert": "/etc/pgf/server.crt", "server_key": "/etc/pgf/server.key"}
SECTIONS = {
    "none": {"active": "0", "sslmode": "prefer"},
    "self-signed": {
        "active": "1",
        "sslmode": "require",
        "cert_file": "/pg/server.crt",
        "key_file": "/pg/server.key",
    },
    "ca": {
        "active": "1",
        "sslmode": "verify-full",
        "ca_file": CA["ca_file"],
        "cert_file": CA["server_cert"],
        "key_file": CA["server_key"],
    },
}
WANTED = {"self-signed": "self-signed", "ca": CA, "none": "none"}
NAMES = ("monitor", "pg1", "pg2")


def accepts(sslmode, served):
    """Whether a client with ``sslmode`` connects to a server serving ``served`` (none, self-signed, ca)."""
    if served == "none":
        return sslmode in ("disable", "allow", "prefer")
    if served == "self-signed":
        return sslmode in ("allow", "prefer", "require")
    return True


def serves(ssl):
    return "ca" if isinstance(ssl, dict) else ssl


def every_order_connects(setup, rounds):
    """Apply each round's steps in every order: after each step every instance must reach every other."""
    for order in itertools.permutations(NAMES):
        state = dict(setup)
        for each in rounds:
            for name in order:
                if name in each:
                    state[name] = (serves(each[name]["ssl"]), each[name]["ssl_mode"])
                if not all(accepts(state[c][1], state[s][0]) for c in NAMES for s in NAMES if c != s):
                    return False
    return True


@pytest.mark.parametrize(
    ("before", "after"),
    [("none", "self-signed"), ("none", "ca"), ("self-signed", "ca")],
)
def test_every_step_of_a_change_refuses_no_connection_and_ends_where_the_pillar_says(before, after):
    current = dict.fromkeys(NAMES, SECTIONS[before])
    plan = ssl_plan.plan(current, WANTED[after])
    assert plan["problems"] == [] and len(plan["rounds"]) == 2
    setup = {name: (before, SECTIONS[before]["sslmode"]) for name in NAMES}
    assert every_order_connects(setup, plan["rounds"])
    final = plan["rounds"][-1]
    wanted = {"ssl": WANTED[after], "ssl_mode": ssl_plan.DEFAULT_SSLMODE[after]}
    assert final == {key: wanted for key in NAMES}


def test_changing_nothing_plans_nothing():
    for mode in ("none", "self-signed", "ca"):
        assert ssl_plan.plan(dict.fromkeys(NAMES, SECTIONS[mode]), WANTED[mode]) == {
            "problems": [],
            "rounds": [],
        }


def test_a_change_half_done_before_is_finished_without_breaking_connections():
    """An earlier run stopped after the monitor's first round: CA certificate, sslmode still require."""
    monitor = {**SECTIONS["ca"], "sslmode": "require"}
    current = {"monitor": monitor, "pg1": SECTIONS["self-signed"], "pg2": SECTIONS["self-signed"]}
    plan = ssl_plan.plan(current, CA)
    assert "monitor" not in plan["rounds"][0]
    setup = {
        "monitor": ("ca", "require"),
        "pg1": ("self-signed", "require"),
        "pg2": ("self-signed", "require"),
    }
    assert every_order_connects(setup, plan["rounds"])
    assert plan["rounds"][-1] == {key: {"ssl": CA, "ssl_mode": "verify-full"} for key in NAMES}


@pytest.mark.parametrize(
    ("before", "after", "named"),
    [
        ("self-signed", "none", "pillar key pgfailover:ssl:mode is none but the formation uses SSL"),
        ("ca", "none", "pillar key pgfailover:ssl:mode is none but the formation uses SSL"),
        ("ca", "self-signed", "pillar key pgfailover:ssl:mode is self-signed but the formation verifies"),
    ],
)
def test_what_cannot_change_online_is_refused_naming_the_pillar_key(before, after, named):
    plan = ssl_plan.plan(dict.fromkeys(NAMES, SECTIONS[before]), WANTED[after])
    assert plan["rounds"] == []
    assert len(plan["problems"]) == 1 and plan["problems"][0].startswith(named)


def test_the_recorded_choice_reads_pg_autoctl_configuration():
    assert ssl_plan.choice(SECTIONS["none"]) == "none"
    assert ssl_plan.choice(SECTIONS["self-signed"]) == "self-signed"
    assert ssl_plan.choice(SECTIONS["ca"]) == CA
