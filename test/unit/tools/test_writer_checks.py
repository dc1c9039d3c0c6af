"""
The acknowledged-row check of the test writer (test/helpers/writer.py): a row
committed while the check reads the table is not reported lost, and a writer
that does not stop fails instead of escaping the check.
"""

import threading
import time

import pytest

from helpers.writer import Writer


class ReadDuringCommit(Writer):
    """The table as a SELECT's snapshot sees it, while the writer thread acknowledges one more row."""

    def __init__(self, rows):
        super().__init__("host=unused", None, table="t")
        self.acknowledged = list(rows)
        self.acked_by = {row: (0.0, "127.0.0.1") for row in rows}

    def read_ids(self, conninfo=None):
        snapshot = set(self.acknowledged)
        committed_after_the_snapshot = max(self.acknowledged) + 1
        self.acked_by[committed_after_the_snapshot] = (0.1, "127.0.0.1")
        self.acknowledged.append(committed_after_the_snapshot)
        return snapshot


def test_a_row_acknowledged_during_the_read_is_not_reported_lost():
    """Failed before the fix: the acknowledged ids were taken after the SELECT, so row 4 was 'lost'."""
    writer = ReadDuringCommit([1, 2, 3])
    assert writer.missing() == []
    assert writer.acknowledged == [1, 2, 3, 4]


def test_a_row_really_missing_is_still_reported():
    writer = ReadDuringCommit([1, 2, 3])
    original = writer.read_ids
    writer.read_ids = lambda conninfo=None: original(conninfo) - {2}
    assert writer.missing() == [2]


def test_stop_fails_when_the_writer_thread_is_still_committing(monkeypatch):
    """Failed before the fix: stop() returned while the thread went on, its rows outside any check."""
    writer = Writer("host=unused", None, table="t")
    blocked = threading.Event()
    writer._thread = threading.Thread(target=blocked.wait, daemon=True)
    writer._thread.start()
    monkeypatch.setattr(writer._thread, "join", lambda timeout=None: None)
    with pytest.raises(AssertionError, match="did not stop"):
        writer.stop()
    blocked.set()


def test_the_longest_wait_counts_commits_that_hung_without_failing():
    """downtime() is 0.0 without a failed attempt; a commit waiting for a standby only hangs."""
    writer = Writer("host=unused", None, table="t")
    now = time.monotonic()
    for row, ago in enumerate((10.0, 9.0, 1.0), 1):
        writer.acked_by[row] = (now - ago, "127.0.0.1")
        writer.acknowledged.append(row)
        writer.attempts.append((now - ago, True, None))
    assert writer.downtime(since=now - 9.5) == 0.0
    assert 7.9 < writer.longest_wait(since=now - 9.5) < 8.1
