"""The chaos campaign's draw (same seed, same faults) and its report, from a campaign record."""

from chaos import campaign, faults, report


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


def test_the_report_counts_every_fault_loss_and_failure(tmp_path):
    result = {
        "seed": 3,
        "minutes": 4.2,
        "faults": [
            fault(1, "kill-primary", 8.0, 9.0),
            {**fault(2, "kill-primary", 12.0, 14.0, lost=2), "keeper_stalls": 1},
            fault(3, "switchover", 1.5, 2.0, lost=2, converged=False),  # the same 2 rows, read again
        ],
    }
    assert report.totals(result) == {
        "faults": 3,
        "converged": 2,
        "acknowledged": 570,
        "lost": 2,
        "two_writable": 0,
        "unchecked": 0,
    }
    report.write(result, str(tmp_path / "results.json"), "bin/chaos --seed 3 --faults 3")
    page = (tmp_path / "README.md").read_text()
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
