"""
Where a failover's time goes, read off the monitor's events: each step of
pg_auto_failover's protocol is an event (a goal state assigned, a state
reached), so the seconds from the fault to each step split the write outage
into detection, election, promotion, the demote timeout and the opening of
writes.
"""

import datetime

# (phase, whose event, the state it names, which column): in the protocol's order.
STEPS = (
    ("detected", "old", "draining", "goalstate"),  # the monitor found the primary unhealthy
    ("elected", "new", "prepare_promotion", "goalstate"),  # every standby reported its LSN, one was chosen
    ("promoting", "new", "stop_replication", "reportedstate"),  # the candidate promoted, writes still blocked
    ("demote_timeout_over", "new", "wait_primary", "goalstate"),  # primary_demote_timeout ran out
    ("writable", "new", "wait_primary", "reportedstate"),  # the new primary accepts writes
)


def _time(value):
    return datetime.datetime.fromisoformat(value).timestamp()


def failover_phases(events, fault_at, old_primary, new_primary):
    """
    Seconds from ``fault_at`` (a Unix time) to each step of the failover from
    ``old_primary`` to ``new_primary``, from the monitor's ``events`` (the
    dicts of ``pgfailover.events``); a step with no event after the fault is
    left out.
    """
    names = {"old": old_primary, "new": new_primary}
    phases = {}
    for phase, whose, state, column in STEPS:
        times = [
            _time(event["eventtime"])
            for event in events
            if event.get("nodename") == names[whose]
            and event.get(column) == state
            and _time(event["eventtime"]) >= fault_at
        ]
        if times:
            phases[phase] = round(min(times) - fault_at, 2)
    return phases
