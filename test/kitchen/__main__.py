"""
make kitchen (bin/kitchen): each suite of kitchen.yml run for real, the way
Test Kitchen's salt_solo provisioner would run it, on a lab host instead of a
Docker container (no Docker engine here).

    bin/kitchen [--suite NAME] [--keep]

For each suite and platform: boot a lab host of that platform, copy the
formula (pgfailover/, _modules, _states, _beacons) and the suite's pillar,
converge masterless (salt-call --local state.apply, with the suite's instance
name as minion ID), converge again (it must report no change), run the
suite's verifier (test/kitchen, the same tests kitchen.yml's verifier runs in
a container) against the host, and destroy the lab. Platforms the lab cannot
boot (anything but Debian 12) are reported as render-checked only (the
functional render tests cover them). Exit status 0 when every suite that ran
converged, was idempotent and verified.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile

import yaml

from helpers.sigterm import interrupt_on_sigterm
from lab.paths import REPO
from lab.session import Lab

HOST = "kitchen"
BOOTABLE = {"debian-12"}
ROOT = "/srv/kitchen"
COPIED = ("pgfailover", "_modules", "_states", "_beacons")
# The lab's hosts have no Debian source: the suite's pillar gets the lab's
# local repository, as a user points the formula at an internal mirror.
LAB_REPO = {"kind": "url", "url": "file:/srv/lab-apt", "trusted": True}


KITCHEN_YML = os.path.join(REPO, "kitchen.yml")


def suites():
    """(instance name, suite, platform) for every suite and platform of kitchen.yml."""
    with open(KITCHEN_YML) as f:
        kitchen = yaml.safe_load(f)
    for suite in kitchen["suites"]:
        for platform in kitchen["platforms"]:
            yield f"{suite['name']}-{platform['name'].replace('.', '')}", suite, platform


def formula_archive():
    """The formula as kitchen's salt_copy_filter leaves it, as a tar stream."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in COPIED:
            tar.add(os.path.join(REPO, name), arcname=name, filter=_no_caches)
    return buffer.getvalue()


def _no_caches(member):
    return None if "__pycache__" in member.name else member


def suite_pillar(suite):
    pillar_file = suite["provisioner"]["pillars_from_files"]["pgfailover.sls"]
    with open(os.path.join(REPO, pillar_file)) as f:
        pillar = yaml.safe_load(f)
    pillar["pgfailover"]["repo"] = LAB_REPO
    return pillar


def salt_call(lab, instance, *args):
    """salt-call --local on the kitchen host as minion ``instance``: (return code, JSON answer)."""
    argv = [
        "salt-call", "--local", f"--id={instance}", f"--file-root={ROOT}/salt",
        f"--pillar-root={ROOT}/pillar", "--out=json", "--retcode-passthrough", "-l", "quiet", *args,
    ]  # fmt: skip
    result = lab.run(HOST, *argv, check=False, timeout=1800)
    try:
        return result.returncode, json.loads(result.stdout)["local"]
    except (ValueError, KeyError):
        return result.returncode, result.stdout[-2000:] + result.stderr[-2000:]


def converge(lab, instance):
    """state.apply: (succeeded, states changed, failed state comments)."""
    code, states = salt_call(lab, instance, "state.apply")
    if not isinstance(states, dict):
        return False, None, [str(states)]
    failed = [
        f"{key}: {value.get('comment')}" for key, value in states.items() if value.get("result") is not True
    ]
    changed = sorted(value["__id__"] for value in states.values() if value.get("changes"))
    return code == 0 and not failed, changed, failed


def prepare(lab, instance, suite):
    lab.run(HOST, "rm", "-rf", ROOT)
    lab.run(HOST, "mkdir", "-p", f"{ROOT}/salt", f"{ROOT}/pillar")
    subprocess.run(
        ["bin/lab", "exec", HOST, "--", "tar", "-x", "-C", f"{ROOT}/salt"],
        input=formula_archive(), check=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    top = {"base": {"*": ["pgfailover"]}}
    for name, content in (("top.sls", top), ("pgfailover.sls", suite_pillar(suite))):
        lab.run(HOST, "sh", "-c", f"cat > {ROOT}/pillar/{name}", input=yaml.safe_dump(content))
    lab.run(HOST, "sh", "-c", f"printf 'base:\\n  \"*\":\\n    - pgfailover\\n' > {ROOT}/salt/top.sls")
    code, synced = salt_call(lab, instance, "saltutil.sync_all")
    if code != 0:
        raise RuntimeError(f"saltutil.sync_all failed: {synced}")


def verify():
    """The suite's verifier (test/kitchen) against the lab host."""
    argv = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", os.path.join(REPO, "test", "kitchen"),
        f"--kitchen-exec=bin/lab exec {HOST} --",
    ]  # fmt: skip
    return subprocess.run(
        argv, cwd=REPO, env={**os.environ, "PYTHONPATH": os.path.join(REPO, "test")}
    ).returncode


def run_suite(lab, instance, suite, log):
    lab.down()
    lab.up(HOST)
    prepare(lab, instance, suite)
    ok, changed, failed = converge(lab, instance)
    log(f"kitchen: {instance}: converge {'ok' if ok else 'FAILED'} ({len(changed or [])} states changed)")
    if not ok:
        return {"converged": False, "failed": failed[:10]}
    ok, changed, failed = converge(lab, instance)
    log(f"kitchen: {instance}: second converge: {len(changed or [])} states changed {changed or ''}")
    verified = verify() == 0
    log(f"kitchen: {instance}: verify {'ok' if verified else 'FAILED'}")
    return {"converged": True, "idempotent": ok and changed == [], "changed": changed, "verified": verified}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", help="only this suite")
    parser.add_argument("--keep", action="store_true", help="leave the lab host up (bin/lab shell kitchen)")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    lab = Lab()
    results = {}
    try:
        for instance, suite, platform in suites():
            if args.suite and suite["name"] != args.suite:
                continue
            if platform["name"] not in BOOTABLE:
                print(f"kitchen: {instance}: {platform['name']} cannot boot here: render-checked only")
                results[instance] = {"render_checked_only": True}
                continue
            results[instance] = run_suite(lab, instance, suite, print)
    finally:
        if not args.keep:
            lab.down()
    print(f"kitchen: {json.dumps(results)}")
    passed = all(
        r.get("render_checked_only") or (r.get("converged") and r.get("idempotent") and r.get("verified"))
        for r in results.values()
    )
    return 0 if results and passed else 1


if __name__ == "__main__":
    sys.exit(main())
