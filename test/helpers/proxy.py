"""
What the HAProxy tests read: a node's health endpoint, HAProxy's own view of
its servers (the stats page's CSV) and a client URI through HAProxy.
"""

import csv
import http.client
import io
import time

# Milliseconds per health endpoint answer in this run, for the run's summary.
HEALTH_LATENCIES_MS = []
# What a flood of health checks met in this run (one line each), for the run's summary.
FLOODS = []


def health(address, path, port=8008, timeout=1.0):
    """(HTTP status, JSON body text) of a node's health endpoint; (None, error) when it does not answer."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode()
    except OSError as exc:
        return None, str(exc)
    finally:
        connection.close()
    HEALTH_LATENCIES_MS.append((time.perf_counter() - started) * 1000)
    return response.status, body


def servers(address, port=7000, timeout=2.0):
    """{(frontend, server): status} from HAProxy's stats page, e.g. ('...-read-write', 'pg1'): 'UP'."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", "/;csv")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    return {
        (row["pxname"], row["svname"]): row["status"]
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


def proxy_uri(address, port, user="app", dbname="appdb"):
    """A plain single-host URI through HAProxy: no target_session_attrs, so HAProxy alone picks the node."""
    return f"postgresql://{user}@{address}:{port}/{dbname}?sslmode=require"
