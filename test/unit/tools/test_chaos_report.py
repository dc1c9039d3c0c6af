"""The chaos campaign's draw (same seed, same faults), its report, and how it ends a wedged failover."""

from chaos import campaign, faults, report
from lab.session import SaltError


def test_the_same_seed_draws_the_same_faults_and_another_seed_others():
    first, _ = campaign.draw(7, 30)
    again, _ = campaign.draw(7, 30)
    other, _ = campaign.draw(8, 30)
    assert first == again and first != other
    assert set(first) <= set(faults.KINDS)
    subset, _ = campaign.draw(7, 10, kinds=["switchover", "kill-primary"])
    assert set(subset) <= {"switchover", "kill-primary"}


def fault(number, kind, uri, proxy, lost=0, converged=True):
    record = {
        "number": number,
        "kind": kind,
        "hosts": ["pg1"],
        "converged": converged,
        "outage_s": {"uri": uri, "haproxy": proxy},
        "acknowledged": {"uri": 100 * number, "haproxy": 90 * number},
        "lost": {"uri": lost, "haproxy": 0},
        "two_writable": [],
    }
    if converged:
        record["converge_s"] = 12.5
    else:
        record["error"] = "AssertionError: not converged | within 300 s"
    return record


def test_the_report_counts_every_fault_loss_failure_and_rebuild(tmp_path):
    result = {
        "seed": 3,
        "minutes": 4.2,
        "faults": [
            fault(1, "kill-primary", 8.0, 9.0),
            {**fault(2, "kill-primary", 12.0, 14.0, lost=2), "keeper_stalls": 1},
            fault(3, "switchover", 1.5, 2.0, lost=2, converged=False),  # the same 2 rows, read again
            {**fault(4, "flap-primary", 95.0, 96.0), "rebuilt": {"node": "pg1", "wedged_s": 91.2}},
        ],
    }
    assert report.totals(result) == {
        "faults": 4,
        "converged": 3,
        "acknowledged": 760,
        "lost": 2,
        "two_writable": 0,
        "rebuilt": 1,
        "unchecked": 0,
    }
    report.write(result, str(tmp_path / "results.json"), "bin/chaos --seed 3 --faults 4")
    page = (tmp_path / "README.md").read_text()
    assert (
        "3 converged after their heal within ? s (1 after a node wedged in fast_forward was rebuilt);" in page
    )
    assert "| wedged in fast_forward 91.2 s: pg1 rebuilt (`orch.replace_node`) |" in page
    row = "| kill-primary | 2 | 10.0 / 12.0 / 12.0 | 11.5 / 14.0 / 14.0 | 12.5 / 12.5 / 12.5 | 2 | 0 | 1 |"
    assert row in page
    assert "| 3 | switchover | pg1 |" in page and "not converged \\| within 300 s" in page
    assert "| switchover | 1 | 1.5 | 2.0 | - | 0 | 0 | 0 |" in page  # lost: found at fault 2, not again
    result["explanations"] = {"3": "The monitor waited for a node that never answered."}
    result["notes"] = ["The nodes ran a unit since removed."]
    report.write(result, str(tmp_path / "results.json"), "bin/chaos --seed 3 --faults 3")
    page = (tmp_path / "README.md").read_text()
    assert "see exception 3 below" in page and "- The nodes ran a unit since removed." in page
    assert "- **Fault 3.** The monitor waited for a node that never answered." in page
    assert (tmp_path / "outages.png").stat().st_size > 0
    report.write(result, str(tmp_path / "kill-primary.json"), "bin/chaos --kinds kill-primary")
    assert "](kill-primary-outages.png)" in (tmp_path / "kill-primary.md").read_text()
    assert (tmp_path / "kill-primary-outages.png").stat().st_size > 0


def event(node, at, goal, reported):
    return {"nodename": node, "eventtime": f"2026-11-30T12:00:{at:06.3f}+00:00", "goalstate": goal,
            "reportedstate": reported}  # fmt: skip


def test_failover_phases_time_each_step_of_the_protocol_from_the_fault():
    from chaos.phases import failover_phases

    fault_at = 1_796_040_010.0  # 2026-11-30T12:00:10Z
    events = [
        event("pg1", 5.0, "draining", "primary"),  # before the fault: a failover earlier, not this one
        event("pg1", 12.5, "draining", "primary"),
        event("pg2", 13.0, "report_lsn", "secondary"),
        event("pg2", 14.2, "prepare_promotion", "report_lsn"),
        event("pg2", 15.4, "stop_replication", "prepare_promotion"),
        event("pg2", 16.1, "stop_replication", "stop_replication"),
        event("pg2", 18.9, "wait_primary", "stop_replication"),
        event("pg2", 19.8, "wait_primary", "wait_primary"),
        event("pg3", 19.9, "wait_primary", "wait_primary"),  # another node: not the new primary
    ]
    phases = failover_phases(events, fault_at, "pg1", "pg2")
    assert phases == {
        "detected": 2.5,
        "elected": 4.2,
        "promoting": 6.1,
        "demote_timeout_over": 8.9,
        "writable": 9.8,
    }
    assert failover_phases(events[:3], fault_at, "pg1", "pg2") == {"detected": 2.5}


def test_the_report_shows_where_failovers_spend_their_time(tmp_path):
    phases = {"detected": 2.0, "elected": 4.0, "promoting": 5.0, "demote_timeout_over": 9.0, "writable": 10.0}
    result = {
        "seed": 1,
        "minutes": 1.0,
        "faults": [
            {**fault(1, "kill-primary", 10.0, 10.0), "phases_s": phases},
            {**fault(2, "kill-primary", 12.0, 12.0), "phases_s": {**phases, "writable": 12.0}},
            fault(3, "switchover", 3.0, 3.0),
        ],
    }
    page = report.markdown(result, "bin/chaos")
    assert "| kill-primary | 2 | 2.0 | 4.0 | 5.0 | 9.0 | 11.0 |" in page
    assert "| switchover | 1 |" not in page.split("Where a failover")[1].split("## Every fault")[0]


def node(state, primary=False):
    state = "primary" if primary else state
    return {"assigned_group_state": state, "current_group_state": state, "health": 1}


class WedgedCluster:
    """The monitor's view of a failover wedged in fast_forward until pg2 is rebuilt (not made at will)."""

    def __init__(self):
        self.rebuilt = []
        self.unanswered = 1  # the monitor's minion, reconnecting after a heal, misses the first call

    def table(self):
        if self.unanswered:
            self.unanswered -= 1
            raise SaltError("salt mon pgfailover.state: mon: Minion did not return")
        if self.rebuilt:
            return {name: node("secondary", name == "pg1") for name in ("pg1", "pg2", "pg3")}
        return {
            name: node("fast_forward" if name == "pg2" else "report_lsn") for name in ("pg1", "pg2", "pg3")
        }

    def orchestrate_ok(self, name, pillar):
        self.rebuilt.append((name, pillar))

    def converged(self, timeout):
        assert self.rebuilt, "converged is awaited only once the wedge is ended"


def test_a_failover_wedged_in_fast_forward_is_ended_by_rebuilding_the_wedged_node(monkeypatch):
    monkeypatch.setattr(campaign, "WEDGE_AFTER", 0.2)
    monkeypatch.setattr(campaign, "POLL", 0.05)
    chaos = campaign.Campaign.__new__(campaign.Campaign)
    chaos.cluster, chaos.log = WedgedCluster(), print
    record = {}
    chaos.converge(record)
    assert chaos.cluster.rebuilt == [("pgfailover.orch.replace_node", {"replace_node": {"rebuild": ["pg2"]}})]
    assert record["rebuilt"]["node"] == "pg2" and record["rebuilt"]["wedged_s"] >= 0.2
    assert chaos.cluster.unanswered == 0


def test_a_short_fast_forward_is_waited_for_and_nothing_is_rebuilt(monkeypatch):
    monkeypatch.setattr(campaign, "WEDGE_AFTER", 0.5)
    monkeypatch.setattr(campaign, "POLL", 0.05)
    cluster = WedgedCluster()
    cluster.unanswered = 0
    wedged = cluster.table()
    settled = {"pg1": node("primary"), "pg2": node("secondary")}
    tables = iter(
        [wedged, wedged, settled]
    )  # fast_forward for two polls, as a failover's step, then converged
    monkeypatch.setattr(cluster, "table", lambda: next(tables))
    monkeypatch.setattr(cluster, "converged", lambda timeout: None)
    chaos = campaign.Campaign.__new__(campaign.Campaign)
    chaos.cluster, chaos.log = cluster, print
    record = {}
    chaos.converge(record)
    assert cluster.rebuilt == [] and "rebuilt" not in record
