"""
A Prometheus server on a lab host, from Debian's package in the lab's
repository: it scrapes the formula's exporters with the shipped alert rules,
and the tests read its HTTP API (queries, alerts) as a user's dashboards would.
"""

import json
import os
import urllib.parse
import urllib.request

from helpers.waiting import wait_until
from lab.paths import REPO

RULES = os.path.join(REPO, "pgfailover", "files", "prometheus", "alerts.yml")
PORT = 9090
CONFIG = """\
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - /etc/prometheus/pgfailover-alerts.yml
scrape_configs:
  - job_name: pgfailover-monitor
    static_configs:
      - targets: {monitor}
  - job_name: pgfailover-nodes
    static_configs:
      - targets: {nodes}
"""


class Prometheus:
    """Prometheus on ``host`` scraping ``monitor`` and ``nodes`` (lists of "address:port")."""

    def __init__(self, lab, host):
        self.lab = lab
        self.host = host
        self.url = f"http://{lab.address(host)}:{PORT}"

    def install(self, monitor, nodes):
        self.lab.run(self.host, "apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus",
                     timeout=600)  # fmt: skip
        with open(RULES) as f:
            self._write("/etc/prometheus/pgfailover-alerts.yml", f.read())
        config = CONFIG.format(monitor=json.dumps(monitor), nodes=json.dumps(nodes))
        self._write("/etc/prometheus/prometheus.yml", config)
        self.lab.run(self.host, "systemctl", "restart", "prometheus")
        wait_until(self._ready, 60, "Prometheus answers")

    def remove(self):
        self.lab.run(self.host, "apt-get", "purge", "-y", "-q", "prometheus", check=False, timeout=600)

    def _write(self, path, content):
        self.lab.run(self.host, "sh", "-c", f"cat > {path}", input=content)

    def _ready(self):  # a refused connection is retried by wait_until
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
            return answer.status == 200

    def _get(self, path, **params):
        with urllib.request.urlopen(
            f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=10
        ) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression):
        """An instant query: {frozenset of label items: value}."""
        result = self._get("/api/v1/query", query=expression)["result"]
        return {frozenset(row["metric"].items()): float(row["value"][1]) for row in result}

    def by_node(self, metric):
        """A pgfailover_node_* metric now: {node: value}."""
        return {dict(labels)["node"]: value for labels, value in self.query(metric).items()}

    def firing(self, alertname=None):
        """The labels of the alerts that fire now (only those named ``alertname`` when given)."""
        return [
            alert["labels"]
            for alert in self._get("/api/v1/alerts")["alerts"]
            if alert["state"] == "firing" and alertname in (None, alert["labels"].get("alertname"))
        ]

    def rule_groups(self):
        """The rule groups Prometheus has loaded."""
        return self._get("/api/v1/rules")["groups"]

    def targets_up(self):
        """{scrape URL: health} of every active target."""
        return {t["scrapeUrl"]: t["health"] for t in self._get("/api/v1/targets")["activeTargets"]}
