"""
One object over the lab for tests, the demo and the benchmarks: hosts up and
down, commands in hosts, the Salt CLIs with JSON results, and faults.
"""

import json
import os
import shutil
import subprocess

from lab import cli, hosts, master, network


def unavailable_reason():
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("systemd-nspawn", "debootstrap", "dpkg-scanpackages", "nsenter"):
        if shutil.which(tool) is None:
            return f"the lab needs {tool} (bin/install-deps installs it)"
    return None


class SaltError(RuntimeError):
    """A Salt CLI call that failed, with its output."""


class Lab:
    def __init__(self, log=print):
        self.log = log

    # -- hosts -----------------------------------------------------------
    def up(self, *names):
        cli.up(list(names), log=self.log)

    def down(self):
        cli.down(log=self.log)

    def running(self):
        return hosts.running_hosts()

    def address(self, name):
        return hosts.address(name)

    def run(self, name, *argv, check=True, timeout=300, **kwargs):
        return hosts.run(name, list(argv), check=check, timeout=timeout, **kwargs)

    # -- faults ----------------------------------------------------------
    def kill(self, name):
        hosts.kill(name)

    def stop(self, name):
        hosts.stop(name)

    def start(self, name):
        hosts.boot(name, self.log)
        master.wait_ping([name])

    def partition(self, name):
        network.set_host_link(name, up=False)

    def heal(self, name):
        network.set_host_link(name, up=True)

    def cut_routes(self, name, others):
        """
        A partial partition: inside host ``name``, no route to the ``others``
        (connections fail at once, as with a link down). Everyone else still
        reaches it, as a proxy on its side of a split would.
        """
        for other in others:
            self.run(name, "ip", "route", "replace", "unreachable", f"{self.address(other)}/32")

    def restore_routes(self, name, others):
        for other in others:
            self.run(name, "ip", "route", "del", "unreachable", f"{self.address(other)}/32", check=False)

    # -- salt ------------------------------------------------------------
    def pillar(self, *files):
        master.install_pillar(files)

    def salt(self, target, function, *args, tgt_type="glob", timeout=600, check=True):
        """
        `salt TARGET FUNCTION ARGS --out=json --static`, parsed. With ``check``,
        a minion whose function failed raises SaltError: `salt --static` exits 0
        and prints the error as that minion's return.
        """
        argv = [f"--{tgt_type}" if tgt_type != "glob" else "", target, function, *args]
        returns = self._json("salt", [a for a in argv if a], timeout, check)
        failed = {minion: ret for minion, ret in (returns or {}).items() if _is_function_error(ret)}
        if check and failed:
            raise SaltError(f"salt {target} {function}: " + "; ".join(f"{m}: {r}" for m, r in failed.items()))
        return returns

    def salt_run(self, *args, timeout=1800, check=True):
        return self._json("salt-run", list(args), timeout, check)

    def salt_call(self, name, *args, timeout=600, check=True):
        result = hosts.run(
            name, ["salt-call", "--out=json", "--retcode-passthrough", *args], check=False, timeout=timeout
        )
        return _parse(result, check, f"salt-call on {name}")

    def _json(self, tool, args, timeout, check):
        options = ["--out=json", f"--timeout={timeout}"] + (["--static"] if tool == "salt" else [])
        result = subprocess.run(
            master.cli_argv(tool, [*args, *options]),
            capture_output=True,
            text=True,
            timeout=timeout + 60,
        )
        return _parse(result, check, f"{tool} {' '.join(args)}")


# How a minion's return reads when the function failed (salt/minion.py).
FUNCTION_ERRORS = ("ERROR", "Passed invalid arguments", "The minion function caused an exception")


def _is_function_error(ret):
    return isinstance(ret, str) and (ret.startswith(FUNCTION_ERRORS) or ret.endswith("is not available."))


def _minion_states(result):
    """(step id, step, minion, state id, state) for each minion state of an orchestrate's salt.state steps."""
    for steps in result["data"].values():
        if not isinstance(steps, dict):  # a render error: a list of messages
            continue
        for step_id, step in steps.items():
            if not step_id.endswith("_|-state"):  # salt.function steps return values, not states
                continue
            for minion, states in (step.get("changes", {}).get("ret") or {}).items():
                for state_id, state in states.items() if isinstance(states, dict) else []:
                    yield step_id, step, minion, state_id, state


def orchestrate_failures(result):
    """One line per failed minion state or step of an orchestrate return ('' when none)."""
    if not result:
        return "orchestrate printed nothing"
    lines = [
        f"{minion} {state_id.split('_|-')[1]}: {state['comment'][:500]}"
        for _, _, minion, state_id, state in _minion_states(result)
        if not state.get("result")
    ]
    for steps in result["data"].values():
        if not isinstance(steps, dict):  # the orchestration did not render (or a preflight refused)
            lines += [str(message)[:2000] for message in steps]
            continue
        lines += [
            f"{sid.split('_|-')[1]}: {step['comment'][:300]}"
            for sid, step in steps.items()
            if not step["result"]
        ]
    return "\n".join(lines)


def orchestrate_changes(result):
    """Every (minion, state id) that reported changes in an orchestrate return."""
    return [
        (minion, state_id) for _, _, minion, state_id, state in _minion_states(result) if state.get("changes")
    ]


def _parse(result, check, what):
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    if check and (result.returncode != 0 or data is None):
        raise SaltError(
            f"{what} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        )
    return data
