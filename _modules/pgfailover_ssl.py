"""
Plan an online SSL change of a running formation: which ``pg_autoctl enable
ssl`` each instance gets, in two rounds, so that no connection between the
formation's instances is refused along the way.

Every instance is a server (others connect to it with their ``sslmode``) and a
client (of the monitor, and of the primary for replication). Changed one
instance at a time, a client that verifies certificates (``verify-full``)
refuses a server still serving a self-signed one, and a client that requires
SSL refuses a server without it. Hence two rounds over every instance: first
the new certificates, with the weakest ``sslmode`` any instance uses now or
will use; then the new ``sslmode`` everywhere.

Changes that only tighten are planned: none to self-signed or to a CA,
self-signed to a CA, other CA files. Turning SSL off and going from a CA back
to self-signed certificates are refused, with the reason.
"""

__virtualname__ = "pgfailover_ssl"

# libpq's sslmode values, laxest first.
SSLMODE_STRENGTH = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# The sslmode pg_autoctl gives each choice when none is given (what the formula uses).
DEFAULT_SSLMODE = {"none": "prefer", "self-signed": "require", "ca": "verify-full"}


def __virtual__():
    return __virtualname__


def choice(section):
    """
    The SSL choice recorded in the ``[ssl]`` section of an instance's
    pg_autoctl configuration, as the formula's ``ssl`` argument: ``none``,
    ``self-signed``, or a dict of ``ca_file``, ``server_cert``, ``server_key``.

    CLI Example:

    .. code-block:: bash

        salt-call pgfailover_ssl.choice '{active: 1, ca_file: "", cert_file: /pg/server.crt}'
    """
    if str(section.get("active")) != "1":
        return "none"
    if section.get("ca_file"):
        return {
            "ca_file": section["ca_file"],
            "server_cert": section.get("cert_file"),
            "server_key": section.get("key_file"),
        }
    return "self-signed"


def _mode(ssl):
    return "ca" if isinstance(ssl, dict) else str(ssl)


def _strength(sslmode):
    return SSLMODE_STRENGTH.index(sslmode) if sslmode in SSLMODE_STRENGTH else len(SSLMODE_STRENGTH)


def plan(current, wanted):
    """
    The rounds of ``pg_autoctl enable ssl`` that take every instance from its
    current SSL setup to ``wanted`` (the formula's ``ssl`` argument).
    ``current`` maps each instance's name to the ``[ssl]`` section of its
    configuration. Returns ``{"problems": [...], "rounds": [{name: {"ssl":
    ..., "ssl_mode": ...}}, ...]}``: an instance already set up for a round is
    left out of it, and no rounds at all means nothing to change.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgfailover_ssl.plan '{monitor: {active: 1, sslmode: require}}' \\
            '{ca_file: /etc/pgf/ca.crt, server_cert: /etc/pgf/server.crt, server_key: /etc/pgf/server.key}'
    """
    now = {name: (choice(section), section.get("sslmode") or "prefer") for name, section in current.items()}
    target = (wanted, DEFAULT_SSLMODE[_mode(wanted)])
    problems = _refusals(now, wanted)
    if problems or all(_same(target, setup) for setup in now.values()):
        return {"problems": problems, "rounds": []}
    # Servers first: each gets its new certificate while every instance
    # connects with the weakest sslmode in use, which accepts it.
    weakest = min([sslmode for _, sslmode in now.values()] + [target[1]], key=_strength)
    first = {name: (wanted, weakest) for name in now}
    rounds = [
        {name: step for name, step in first.items() if not _same(step, now[name])},
        {name: target for name in now if not _same(target, first[name])},
    ]
    return {
        "problems": [],
        "rounds": [
            {name: {"ssl": ssl, "ssl_mode": sslmode} for name, (ssl, sslmode) in each.items()}
            for each in rounds
            if each
        ],
    }


def _refusals(now, wanted):
    """Why the formation cannot go from ``now`` to ``wanted`` online (sentences naming the pillar key)."""
    mode = _mode(wanted)
    if mode == "none" and any(_mode(ssl) != "none" for ssl, _ in now.values()):
        return [
            "pillar key pgfailover:ssl:mode is none but the formation uses SSL: SSL is not turned off "
            "online (pg_autoctl's own pg_hba.conf rules are hostssl and stay so, its connections would be "
            "refused); keep SSL, or build a new formation without it"
        ]
    if mode == "self-signed" and any(_mode(ssl) == "ca" for ssl, _ in now.values()):
        return [
            "pillar key pgfailover:ssl:mode is self-signed but the formation verifies its certificates "
            "with a CA: not changed online (pg_autoctl keeps the CA as sslrootcert in each node's monitor "
            "URI, and the service user's root certificate makes libpq verify whatever the sslmode, so "
            "self-signed certificates would be refused); keep mode ca (new certificates: "
            "pgfailover.orch.renew_certificates), or build a new formation"
        ]
    return []


def _same(step, setup):
    (ssl, sslmode), (now_ssl, now_sslmode) = step, setup
    return sslmode == now_sslmode and (ssl == now_ssl if _mode(ssl) == "ca" else _mode(ssl) == _mode(now_ssl))
