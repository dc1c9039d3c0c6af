"""
States for pgBackRest in a pg_auto_failover formation: this host's SSH
identity published in the Salt mine, and the stanza created in the
repository. Both support test mode and report a change only when they make one.
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pgfailover_backup"
MINE_FUNCTION = "pgfailover_backup.identity"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def identity_published(name, **settings):
    """
    This host's SSH identity (the service user's public key, the host key) is
    in the Salt mine under ``pgfailover_backup.identity``, where the other
    hosts of the formation read it. ``name`` is a label.

    .. code-block:: yaml

        pgfailover-backup-identity-published:
          pgfailover_backup.identity_published:
            - name: pgBackRest SSH identity
    """
    ret = _ret(name)
    current = __salt__[MINE_FUNCTION](**settings)
    if not current["user_key"] or not current["host_key"]:
        if __opts__["test"]:
            ret.update(result=None, comment="The SSH identity would be published once its keys exist.")
            ret["changes"] = {"published": True}
            return ret
        missing = "the service user's key" if not current["user_key"] else "the host's ed25519 key"
        ret.update(result=False, comment=f"Cannot publish the SSH identity: {missing} does not exist.")
        return ret
    published = __salt__["mine.get"](__grains__["id"], MINE_FUNCTION).get(__grains__["id"])
    if published == current:
        ret["comment"] = "The SSH identity is published in the Salt mine."
        return ret
    ret["changes"] = {"published": {"old": bool(published), "new": True}}
    if __opts__["test"]:
        ret.update(result=None, comment="The SSH identity would be published in the Salt mine.")
        return ret
    if not __salt__["mine.send"](MINE_FUNCTION, **settings):
        ret.update(result=False, changes={}, comment="The Salt master did not take the SSH identity.")
        return ret
    ret["comment"] = "The SSH identity was published in the Salt mine."
    return ret


def stanza_present(name, **settings):
    """
    The stanza ``name`` exists in the repository: created when missing (the
    formation's primary must be reachable), then checked end to end (a WAL
    file archived by the primary reaches the repository).

    .. code-block:: yaml

        pgfailover-backup-stanza:
          pgfailover_backup.stanza_present:
            - name: default
    """
    ret = _ret(name)
    settings["stanza"] = name
    try:
        if __salt__["pgfailover_backup.stanza_exists"](**settings):
            ret["comment"] = f"Stanza {name} exists."
            return ret
        ret["changes"] = {"stanza": {"old": None, "new": name}}
        if __opts__["test"]:
            ret.update(result=None, comment=f"Stanza {name} would be created and checked.")
            return ret
        __salt__["pgfailover_backup.create_stanza"](**settings)
        __salt__["pgfailover_backup.check"](**settings)
    except (CommandExecutionError, SaltInvocationError) as exc:
        if __opts__["test"]:
            ret.update(result=None, comment=f"Stanza {name} cannot be read yet ({exc}); it would be created.")
            ret["changes"] = {"stanza": {"old": None, "new": name}}
            return ret
        ret.update(result=False, changes={}, comment=f"Stanza {name} could not be created or checked: {exc}")
        return ret
    ret["comment"] = f"Stanza {name} was created; archiving from the primary reaches it."
    return ret
