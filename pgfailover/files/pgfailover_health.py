#!/usr/bin/python3
"""
pgfailover health endpoint: answers HAProxy's HTTP checks for one
pg_auto_failover node (managed by Salt, formula pgfailover).

    GET /primary  200 when this node is the writable primary: PostgreSQL is
                  not in recovery and not read-only, pg_auto_failover's
                  keeper is assigned and in a writable state, and the node is
                  not cut off (see below); 503 otherwise.
    GET /replica  200 when this node is a healthy secondary: in recovery,
                  keeper assigned and in state secondary, WAL streaming, heard
                  from the primary recently and replayed up to what it sent;
                  503 otherwise.
    GET /health   200 with the same facts, whatever the role.

Every answer carries a JSON body with the facts and the reasons for a 503.

Cut off: a node in state primary whose keeper has not reached the monitor
for ``isolation_timeout`` seconds while no standby is connected to it answers
503 on /primary. The monitor may have promoted another node by then, and
pg_autoctl 2.0's keeper does not always demote such a primary itself: it
counts time without standbys only from a moment it saw one connected while
the monitor was unreachable, so a primary whose standbys' connections had
already timed out when it first missed the monitor stays writable (see
docs/known-issues.md). ``isolation_timeout`` 0 turns this off (a formation
without standbys, where no other node can take over).

The keeper's view is read from its local state file and PostgreSQL is asked
over its Unix socket: nothing here talks to the monitor, so checks keep
answering while the monitor is down.

PostgreSQL is asked only when the keeper's states allow the check to pass,
and over a connection opened for that answer and closed right after it. An
idle session would hold a smart shutdown for ever, and pg_autoctl stops the
crash recovery it runs before pg_rewind (a killed old primary rejoining)
with a smart shutdown: an endpoint that kept its connection open could keep
that node out of the cluster.

The endpoint listens without authentication, so a flood of requests must not
reach PostgreSQL: it connects as an unprivileged role (member of pg_monitor,
with a connection limit), asks one question at a time and shares each answer
for ``cache_ms`` milliseconds; at most ``workers`` requests are served at
once and a request that finds them all busy is closed at once (a flood drains
instead of waiting), a request may be ``8 KiB`` at most and must arrive within
a second. Requests from HAProxy's hosts (``reserved_sources``, names or
addresses) are served by ``reserved_workers`` of their own, and the listen
queue (4096) holds more connections than a flood of that many clients opens,
so the kernel never drops HAProxy's handshake behind them: a flood from
anywhere else does not make HAProxy's checks time out.

    pgfailover_health.py /etc/pgfailover/health-<node>.json
"""

import http.server
import io
import json
import logging
import socket
import struct
import sys
import threading
import time

import psycopg2

log = logging.getLogger("pgfailover-health")

# pg_autoctl's NodeState enum (src/bin/pg_autoctl/state.h), in order.
NODE_STATES = (
    "no_state", "init", "single", "primary", "wait_primary", "wait_standby", "demoted",
    "demote_timeout", "draining", "secondary", "catchingup", "prepare_promotion",
    "stop_replication", "maintenance", "join_primary", "apply_settings", "prepare_maintenance",
    "wait_maintenance", "report_lsn", "fast_forward", "join_secondary",
)  # fmt: skip
WRITABLE_STATES = frozenset(("single", "wait_primary", "primary", "apply_settings"))
REPLICA_STATES = frozenset(("secondary",))
# KeeperStateData as pg_autoctl writes it (state file version 1, native layout):
# version, pg_version, pg_control_version, catalog_version_no, system_identifier,
# current_node_id, current_group, assigned_role, current_nodes_version,
# last_monitor_contact, current_role, last_secondary_contact, xlog_lag,
# keeper_is_paused.
KEEPER_STATE = struct.Struct("@iiIIQiiiQQiQqi")
KEEPER_STATE_VERSION = 1
MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT = 1.0  # seconds for a client to send its request

POSTGRES_FACTS = """
SELECT pg_is_in_recovery(),
       current_setting('default_transaction_read_only') = 'on',
       r.status,
       extract(epoch FROM clock_timestamp() - r.last_msg_receipt_time)::float8,
       CASE WHEN pg_is_in_recovery()
            THEN greatest(pg_wal_lsn_diff(r.latest_end_lsn, pg_last_wal_replay_lsn()), 0)::float8
       END,
       (SELECT count(*) FROM pg_stat_replication WHERE usename = 'pgautofailover_replicator')
  FROM (SELECT 1) AS one
  LEFT JOIN pg_stat_wal_receiver AS r ON true
"""


def state_name(number):
    return NODE_STATES[number] if 0 <= number < len(NODE_STATES) else f"unknown({number})"


def read_keeper_state(path):
    """The keeper's assigned and current state, and when it last reached the monitor (epoch seconds)."""
    with open(path, "rb") as state_file:
        raw = state_file.read(KEEPER_STATE.size)
    fields = KEEPER_STATE.unpack(raw)
    if fields[0] != KEEPER_STATE_VERSION:
        raise ValueError(f"state file {path} has version {fields[0]}, expected {KEEPER_STATE_VERSION}")
    return {
        "assigned": state_name(fields[7]),
        "current": state_name(fields[10]),
        "monitor_contact": fields[9],
    }


def keeper_reasons(keeper, wanted):
    """Why the keeper's assigned and current states rule this check out ([] when both are wanted)."""
    if keeper is None:
        return ["the keeper's state file cannot be read"]
    states = ((which, keeper[which]) for which in ("assigned", "current"))
    return [f"keeper {which} state is {state}" for which, state in states if state not in wanted]


def isolation_reasons(keeper, postgres, isolation_timeout, now):
    """
    Why this primary counts as cut off: in state primary (the only state the
    monitor promotes another node from), no standby connected and no contact
    with the monitor for more than isolation_timeout seconds.
    """
    if not isolation_timeout or keeper["current"] != "primary" or postgres["standbys"]:
        return []
    silence = now - keeper["monitor_contact"]
    if silence <= isolation_timeout:
        return []
    return [
        f"cut off: no standby connected and no contact with the monitor for {silence:.0f} s "
        f"(limit {isolation_timeout}); another node may have been promoted"
    ]


def primary_reasons(keeper, postgres, isolation_timeout=0, now=None):
    """Why this node must not take writes ([] when it is the writable primary)."""
    reasons = keeper_reasons(keeper, WRITABLE_STATES)
    if reasons:
        return reasons
    if postgres is None:
        return ["PostgreSQL does not answer"]
    if postgres["in_recovery"]:
        reasons.append("PostgreSQL is in recovery")
    if postgres["read_only"]:
        reasons.append("default_transaction_read_only is on")
    now = time.time() if now is None else now
    return reasons + isolation_reasons(keeper, postgres, isolation_timeout, now)


def replica_reasons(keeper, postgres, limits):
    """Why this node must not take reads as a secondary ([] when healthy and caught up)."""
    reasons = keeper_reasons(keeper, REPLICA_STATES)
    if reasons:
        return reasons
    if postgres is None:
        return ["PostgreSQL does not answer"]
    if not postgres["in_recovery"]:
        reasons.append("PostgreSQL is not in recovery")
    if postgres["wal_receiver"] != "streaming":
        reasons.append(f"WAL receiver is {postgres['wal_receiver'] or 'not running'}")
    silence = postgres["seconds_since_primary"]
    if silence is None or silence > limits["replica_max_silence"]:
        reasons.append(f"nothing from the primary for {silence} s (limit {limits['replica_max_silence']})")
    lag = postgres["replay_lag_bytes"]
    if lag is None or lag > limits["replica_max_lag_bytes"]:
        reasons.append(f"replay lag {lag} bytes (limit {limits['replica_max_lag_bytes']})")
    return reasons


class Postgres:
    """
    The local PostgreSQL over its socket: one short connection per question,
    never left idle; one question at a time, its answer shared for ``cache_ms``.
    """

    def __init__(self, socket_dir, port, user, cache_ms):
        self.dsn = {
            "host": socket_dir,
            "port": port,
            "user": user,
            "dbname": "postgres",
            "application_name": "pgfailover-health",
            "connect_timeout": 1,
            "options": "-c statement_timeout=500",
        }
        self.cache_seconds = cache_ms / 1000
        self.lock = threading.Lock()
        self.answered_at = None
        self.answer = None

    def facts(self):
        """The facts, asked again only when the last answer is older than the cache's lifetime."""
        with self.lock:
            now = time.monotonic()
            if self.answered_at is None or now - self.answered_at >= self.cache_seconds:
                self.answer = self.ask()
                self.answered_at = time.monotonic()
            return self.answer

    def ask(self):
        connection = None
        try:
            connection = psycopg2.connect(**self.dsn)
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(POSTGRES_FACTS)
                row = cursor.fetchone()
        except psycopg2.Error as exc:
            log.debug("PostgreSQL does not answer: %s", exc)
            return None
        finally:
            if connection is not None:
                connection.close()
        keys = (
            "in_recovery",
            "read_only",
            "wal_receiver",
            "seconds_since_primary",
            "replay_lag_bytes",
            "standbys",
        )
        return dict(zip(keys, row, strict=True))


class Checks:
    """The node's facts and the verdict of each endpoint."""

    def __init__(self, config):
        self.config = config
        self.postgres = Postgres(
            config["socket_dir"], config["pgport"], config["dbuser"], config.get("cache_ms", 300)
        )

    def keeper(self):
        try:
            return read_keeper_state(self.config["state_file"])
        except (OSError, ValueError, struct.error) as exc:
            log.debug("keeper state unreadable: %s", exc)
            return None

    def answer(self, path):
        if path not in ("/primary", "/replica", "/health"):
            return 404, {"error": f"unknown path {path}; use /primary, /replica or /health"}
        keeper = self.keeper()
        wanted = {"/primary": WRITABLE_STATES, "/replica": REPLICA_STATES}.get(path)
        # PostgreSQL is left alone while the keeper rules the check out (see the module's docstring).
        asked = wanted is None or not keeper_reasons(keeper, wanted)
        postgres = self.postgres.facts() if asked else None
        if path == "/primary":
            reasons = primary_reasons(keeper, postgres, self.config.get("isolation_timeout", 0))
        elif path == "/replica":
            reasons = replica_reasons(keeper, postgres, self.config)
        else:
            reasons = [] if postgres is not None else ["PostgreSQL does not answer"]
        body = {"node": self.config["node"], "check": path[1:], "ok": not reasons, "reasons": reasons}
        body.update(keeper=keeper, postgres=postgres, postgres_asked=asked)
        return (200 if not reasons else 503), body


class LimitedReader(io.RawIOBase):
    """A request stream that ends after ``limit`` bytes: no request line or header can be larger."""

    def __init__(self, stream, limit):
        self.stream = stream
        self.left = limit

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.left <= 0:
            return 0
        data = self.stream.read1(min(len(buffer), self.left))
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def handler_for(checks):
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT  # a client that stalls cannot hold a worker

        def setup(self):
            super().setup()
            self.limited = LimitedReader(self.rfile, MAX_REQUEST_BYTES)
            self.rfile = io.BufferedReader(self.limited)

        def parse_request(self):
            parsed = super().parse_request()
            if parsed and self.limited.left <= 0:
                self.send_error(431, f"a request may have {MAX_REQUEST_BYTES} bytes at most")
                return False
            return parsed

        def _reply(self, send_body):
            status, body = checks.answer(self.path.split("?", 1)[0])
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            if send_body:
                self.wfile.write(payload)

        def do_GET(self):
            self._reply(send_body=True)

        def do_HEAD(self):
            self._reply(send_body=False)

        def do_OPTIONS(self):  # HAProxy's check method when none is given
            self._reply(send_body=False)

        def log_message(self, *args):
            pass  # one line per check would flood the journal

    return Handler


def addresses_of(names):
    """Every address the given host names or addresses resolve to (unresolvable ones are logged, skipped)."""
    found = set()
    for name in names:
        try:
            found.update(info[4][0] for info in socket.getaddrinfo(name, None))
        except OSError as exc:
            log.warning(
                "reserved source %s does not resolve (%s): its checks share the others' workers", name, exc
            )
    return frozenset(found)


class BoundedServer(http.server.ThreadingHTTPServer):
    """
    A threading server that never makes a client wait behind others: at most
    ``workers`` requests in hand, and one that finds them all busy is closed
    at once, so the accept loop never blocks. Requests from
    ``reserved_sources`` (addresses) have ``reserved_workers`` of their own.
    """

    daemon_threads = True
    # The listen queue must hold a whole flood: when it is full the kernel
    # drops new handshakes, HAProxy's check among them, and the retry comes
    # a second later, after HAProxy's check timeout. listen() caps it at
    # net.core.somaxconn (4096 on Debian 12).
    request_queue_size = 4096

    def __init__(self, address, handler, workers, reserved_sources=frozenset(), reserved_workers=4):
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(workers)
        self.reserved_slots = threading.BoundedSemaphore(reserved_workers)
        self.reserved_sources = reserved_sources

    def _lane(self, client_address):
        return self.reserved_slots if client_address[0] in self.reserved_sources else self.slots

    def process_request(self, request, client_address):
        lane = self._lane(client_address)
        if not lane.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            lane.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._lane(client_address).release()


def main(argv):
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    with open(argv[1]) as config_file:
        config = json.load(config_file)
    address = (config["bind"], config["port"])
    reserved = addresses_of(config.get("reserved_sources", []))
    server = BoundedServer(
        address,
        handler_for(Checks(config)),
        config.get("workers", 16),
        reserved_sources=reserved,
        reserved_workers=config.get("reserved_workers", 4),
    )
    log.info("node %s: own workers for %s", config["node"], ", ".join(sorted(reserved)) or "no source")
    log.info("node %s: listening on %s:%s", config["node"], config["bind"], config["port"])
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
