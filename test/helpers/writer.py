"""
A real client for failure tests and benchmarks: it commits numbered rows
through a connection string as fast as it can, in a thread, and records every
acknowledged commit and every failure, so a test can measure write downtime and
check that no acknowledged row was lost.
"""

import itertools
import threading
import time

import psycopg

# libpq gives up on a connection attempt after connect_timeout seconds, and on
# an established connection whose packets go unanswered (a partitioned host)
# after tcp_user_timeout ms. No statement_timeout: cancelling a commit that
# waits for a synchronous standby would report it committed locally only.
CONNECT_OPTIONS = {"connect_timeout": 2, "tcp_user_timeout": 3000, "keepalives_idle": 1}

# Write downtime (seconds) per scenario of a test run, for its summary.
DOWNTIMES = {}


def client_uri(uri, address_of, user):
    """
    A formation URI (``postgres://h1:p,h2:p/db?...``) with ``user`` and each
    host name replaced by ``address_of(host)``, for a client outside the hosts'
    name resolution.
    """
    _, rest = uri.split("://", 1)
    hosts, tail = rest.split("/", 1)
    by_address = ",".join(
        f"{address_of(host.rsplit(':', 1)[0])}:{host.rsplit(':', 1)[1]}" for host in hosts.split(",")
    )
    return f"postgresql://{user}@{by_address}/{tail}"


class Writer:
    """Commits rows (id, written_at) into ``table`` through ``conninfo`` until stopped."""

    def __init__(self, conninfo, password, table, pause=0.02, first_id=1):
        self.conninfo = conninfo
        self.password = password
        self.table = table
        self.pause = pause
        self.first_id = first_id  # another writer can go on in the same table from a higher id
        self.acknowledged = []  # ids whose COMMIT returned success
        self.acked_by = {}  # id: (monotonic time, address of the server that acknowledged it)
        self.attempts = []  # (monotonic time, ok, error text or None)
        self.checked_on = None  # address of the server the last missing() read from
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"writer-{table}", daemon=True)

    def connect(self):
        return psycopg.connect(self.conninfo, password=self.password, autocommit=True, **CONNECT_OPTIONS)

    def start(self):
        with self.connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY, written_at timestamptz)"
            )
        self._thread.start()
        self.wait_for_commits(5)
        return self

    def stop(self):
        """Stop writing; fail if the thread is still committing (its rows would escape the checks)."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            raise AssertionError(f"{self.table}: the writer thread did not stop within 30 s")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _loop(self):
        conn = None
        next_id = self.first_id
        while not self._stop.is_set():
            row_id, next_id = next_id, next_id + 1
            try:
                if conn is None:
                    conn = self.connect()
                conn.execute(f"INSERT INTO {self.table} VALUES (%s, now())", (row_id,))
            except psycopg.Error as exc:
                self.attempts.append((time.monotonic(), False, str(exc).strip().splitlines()[0][:200]))
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.1)
                continue
            now = time.monotonic()
            # Who acknowledged it first: missing() reads `acknowledged` from another thread.
            self.acked_by[row_id] = (now, conn.info.hostaddr or conn.info.host)
            self.acknowledged.append(row_id)
            self.attempts.append((now, True, None))
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def wait_for_commits(self, count, timeout=120):
        """Wait until ``count`` more commits have been acknowledged; return the seconds it took."""
        started = time.monotonic()
        goal = len(self.acknowledged) + count
        while len(self.acknowledged) < goal:
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"{self.table}: no {count} commits within {timeout} s; last errors: "
                    + "; ".join(str(a[2]) for a in self.attempts[-3:] if not a[1])
                )
            time.sleep(0.05)
        return time.monotonic() - started

    def downtime(self, since=0.0):
        """
        Write downtime after ``since`` (monotonic): the longest time between two
        acknowledged commits, counted from the last commit before the outage to
        the first one after it, so that a commit left hanging counts too; up to
        now when writes have not resumed. 0.0 without any failed attempt.
        """
        if not any(not ok and at >= since for at, ok, _ in self.attempts):
            return 0.0
        acks = [at for at, ok, _ in self.attempts if ok]
        before = [at for at in acks if at < since][-1:]
        times = before + [at for at in acks if at >= since] + [time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(times))

    def longest_wait(self, since=0.0):
        """
        The longest time without an acknowledged commit after ``since``
        (monotonic), counted from the last commit before it, up to now: unlike
        downtime(), it also counts commits that hung without failing (a
        synchronous commit with no standby to confirm it).
        """
        acks = sorted(at for at, _ in list(self.acked_by.values()))
        before = [at for at in acks if at < since][-1:] or [since]
        times = before + [at for at in acks if at >= since] + [time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(times))

    def errors(self, since=0.0):
        """The distinct error messages of failed attempts after ``since``."""
        return sorted({error for at, ok, error in self.attempts if not ok and at >= since})

    def describe(self, ids, since=0.0):
        """One line per id: when (seconds after ``since``) and by which server it was acknowledged."""
        lines = []
        for row_id in ids:
            at, server = self.acked_by[row_id]
            lines.append(f"row {row_id} acknowledged at {at - since:+.2f} s by {server}")
        return lines

    def missing(self, conninfo=None):
        """
        Acknowledged ids that are not in the table now (read through
        ``conninfo``). The acknowledged ids are taken before the read: a row
        the writer commits while the SELECT runs is not in its snapshot, and
        taking them after reported such rows as lost.
        """
        acknowledged = set(self.acknowledged)
        present = self.read_ids(conninfo)
        return sorted(acknowledged - present)

    def read_ids(self, conninfo=None):
        """The ids in the table now; ``checked_on`` becomes the address of the server read."""
        with psycopg.connect(
            conninfo or self.conninfo, password=self.password, autocommit=True, **CONNECT_OPTIONS
        ) as conn:
            present = {row[0] for row in conn.execute(f"SELECT id FROM {self.table}")}
            self.checked_on = conn.info.hostaddr or conn.info.host
        return present
