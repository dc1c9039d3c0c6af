"""
Fire an event whenever the local pg_auto_failover node changes state.

The node's own view is read from pg_autoctl's state file (``pgfailover.state
local=True``, which runs no pg_autoctl command), so the beacon keeps working
while the monitor is down and never disturbs the running service. The first
reading after the minion starts is the baseline and fires nothing; after that,
every change of the current or assigned state fires one event tagged
``salt/beacon/<minion>/<beacon name>/state/<current state>`` with the node
name, its formation, both states and the previous ones.

.. code-block:: yaml

    beacons:
      pgfailover:
        - interval: 2
        # optional: another local node than the one of the pgfailover grain
        - pgdata: /var/lib/postgresql/pgaf/node2
      # a host with nodes of several formations: one more beacon per node
      pgfailover_billing:
        - beacon_module: pgfailover
        - interval: 2
        - pgdata: /var/lib/postgresql/pgaf/pgb1

A reactor for a promotion (see the README):

.. code-block:: yaml

    reactor:
      - 'salt/beacon/*/pgfailover/state/primary':
        - salt://reactor/repoint-pooler.sls
"""

import logging

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "pgfailover"

_ALLOWED_KEYS = ("interval", "pgdata", "disable_during_state_run", "beacon_module")


def __virtual__():
    return __virtualname__


def _options(config):
    options = {}
    for item in config:
        options.update(item)
    return options


def validate(config):
    """Accept a list of one-key dicts with interval and, optionally, pgdata and beacon_module."""
    if not isinstance(config, list) or not all(isinstance(item, dict) for item in config):
        return False, "pgfailover beacon: configuration must be a list of dicts (- interval: 2)"
    unknown = sorted(set(_options(config)) - set(_ALLOWED_KEYS))
    if unknown:
        return False, (
            f"pgfailover beacon: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_ALLOWED_KEYS)}"
        )
    return True, "Valid beacon configuration"


def beacon(config):
    """
    Compare the local node's current and assigned state with the last reading
    and return one event when either changed.
    """
    options = _options(config)
    kwargs = {"pgdata": options["pgdata"]} if options.get("pgdata") else {}
    if "pgfailover.state" not in __salt__:  # the formula has not run here yet
        return []
    try:
        node = __salt__["pgfailover.state"](local=True, **kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        log.debug("pgfailover beacon: no local node state: %s", exc)
        return []
    if not isinstance(node, dict) or "current_group_state" not in node:  # a monitor, not a node
        return []
    reading = (node["current_group_state"], node["assigned_group_state"])
    key = "pgfailover.beacon." + (options.get("pgdata") or "grain")
    previous = __context__.get(key)
    __context__[key] = reading
    if previous is None or previous == reading:
        return []
    return [
        {
            "tag": f"state/{reading[0]}",
            "node": node["nodename"],
            "formation": node.get("formation"),
            "current_group_state": reading[0],
            "assigned_group_state": reading[1],
            "previous_current_group_state": previous[0],
            "previous_assigned_group_state": previous[1],
        }
    ]
