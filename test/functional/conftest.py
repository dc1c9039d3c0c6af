"""
Functional tests: the real execution and state modules, loaded in-process by
Salt's loader, driving real pg_autoctl and PostgreSQL 15 on loopback ports.
"""

import copy

import pytest
from saltfactories.utils.functional import Loaders

from helpers.local_cluster import NODE_OPTIONS, LocalCluster, free_port, have_pg_autoctl


@pytest.fixture(scope="session")
def local_cluster():
    if not have_pg_autoctl():
        pytest.skip("needs root and pg_autoctl (Debian: pg-auto-failover-cli)")
    cluster = LocalCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def loaders(minion_opts, local_cluster):
    """Loaders whose minion config carries the cluster's connection options."""
    opts = copy.deepcopy(minion_opts)
    opts["pgfailover"] = local_cluster.conn()
    return Loaders(opts)


@pytest.fixture
def modules(loaders):
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states


class Formation:
    """A running monitor and two nodes (primary, secondary) built with the module."""

    def __init__(self, cluster, modules):
        self.cluster = cluster
        self.monitor = cluster.pgdata("monitor")
        self.monitor_port = free_port()
        self.nodes = {}
        modules.pgfailover.create_monitor(
            "127.0.0.1", port=self.monitor_port, auth="trust", ssl="self-signed", pgdata=self.monitor
        )
        cluster.start(self.monitor)
        self.monitor_uri = modules.pgfailover.wait_monitor(pgdata=self.monitor, timeout=30)
        for name in ("node1", "node2"):
            self.add_node(modules, name)
            modules.pgfailover.wait_converged(timeout=90, pgdata=self.monitor, expect_nodes=len(self.nodes))

    def add_node(self, modules, name, **options):
        pgdata = self.cluster.pgdata(name)
        port = free_port()
        create = {**NODE_OPTIONS, "port": port, **options}
        hostname = create.pop("hostname")
        modules.pgfailover.create_postgres(
            name, hostname, pgdata=pgdata, monitor_uri=self.monitor_uri, **create
        )
        self.cluster.start(pgdata)
        self.nodes[name] = {"pgdata": pgdata, "port": port}
        return pgdata


@pytest.fixture(scope="session")
def formation(local_cluster, loaders):
    return Formation(local_cluster, loaders.modules)
