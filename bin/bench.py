"""
make bench: measure the lab, the execution module and the formula on this
machine and record the numbers (not a test: nothing here passes or fails).

    bin/bench.py [lab] [module] [formula] [--runs N] [--cold]

Writes docs/benchmarks/results.json (merged by section) and regenerates
docs/benchmarks/README.md with the machine, date and commit.
"""

import argparse
import concurrent.futures
import datetime
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "test"))

from lab import hosts, image, master  # noqa: E402
from lab.paths import CACHE  # noqa: E402
from lab.session import Lab  # noqa: E402

OUT = os.path.join(REPO, "docs", "benchmarks")
HOSTS = ("mon", "pg1", "pg2", "pg3")
PILLAR = os.path.join(REPO, "test", "salt", "pillar", "lab_cluster.sls")
PLAIN = os.path.join(REPO, "test", "bench", "plain_cluster.sh")


def timed(action):
    start = time.monotonic()
    action()
    return time.monotonic() - start


def summary(samples, unit="s"):
    return {
        "median": round(statistics.median(samples), 3),
        "min": round(min(samples), 3),
        "max": round(max(samples), 3),
        "runs": len(samples),
        "unit": unit,
    }


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total


def processes_of_group(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(entry)
            except OSError:
                pass
    return pids


# -- lab -----------------------------------------------------------------


def bench_lab(lab, runs, cold):
    results = {}
    if cold:
        lab.down()
        for path in glob.glob(os.path.join(CACHE, "image-*")) + glob.glob(os.path.join(CACHE, "aptrepo-*")):
            shutil.rmtree(path)
        results["cold_build"] = summary([timed(lambda: image.build_repo(log=lambda *_: None))])
    ups, downs = [], []
    for _ in range(runs):
        lab.down()
        ups.append(timed(lambda: lab.up(*HOSTS)))
        downs.append(timed(lab.down))
    results["warm_up_4_hosts"] = summary(ups)
    results["down_4_hosts"] = summary(downs)
    lab.up(*HOSTS)
    time.sleep(15)  # idle
    per_host = [pss_kib(hosts.processes(name)) / 1024 for name in HOSTS]
    results["idle_host_pss"] = summary(per_host, "MiB")
    results["master_pss"] = summary([pss_kib(processes_of_group(master.pid())) / 1024], "MiB")
    return results


# -- module --------------------------------------------------------------

LOADED_CALLS = """
import json, statistics, time
import salt.client, salt.config
caller = salt.client.Caller()
caller.cmd("pgfailover.state")  # warm
samples = []
for _ in range({runs}):
    start = time.perf_counter()
    caller.cmd("pgfailover.state")
    samples.append(time.perf_counter() - start)
print(json.dumps(samples))
"""


def ensure_cluster(lab):
    lab.up(*HOSTS)
    lab.pillar(PILLAR)
    result = lab.salt_run("state.orchestrate", "pgfailover.orch")
    assert result["retcode"] == 0, "orchestrate failed"


def bench_module(lab, runs):
    ensure_cluster(lab)
    samples, baseline = [], []
    for _ in range(max(runs, 10)):
        samples.append(timed(lambda: lab.run("pg1", "salt-call", "--out=json", "pgfailover.state")))
        baseline.append(timed(lambda: lab.run("pg1", "salt-call", "--out=json", "test.true")))
    loaded = lab.run("pg1", "/opt/salt/bin/python3", "-c", LOADED_CALLS.format(runs=max(runs, 20)))
    return {
        "salt_call_state": summary(samples),
        "salt_call_test_true": summary(baseline),
        "loaded_function_state": summary([s * 1000 for s in json.loads(loaded.stdout)], "ms"),
    }


# -- formula -------------------------------------------------------------


def plain_bring_up(lab):
    """The cluster built by test/bench/plain_cluster.sh: install everywhere, monitor, primary, secondaries."""

    def on(host, *args):
        with open(PLAIN) as script:
            lab.run(host, "sh", "-s", "--", *args, stdin=script)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda h: on(h, "install"), HOSTS))
    on("mon", "monitor", "mon")
    on("pg1", "node", "pg1", "mon")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda h: on(h, "node", h, "mon"), ("pg2", "pg3")))
    on("mon", "converged", "3")


def formula_bring_up(lab):
    lab.pillar(PILLAR)
    result = lab.salt_run("state.orchestrate", "pgfailover.orch")
    assert result["retcode"] == 0, "orchestrate failed"


def bench_formula(lab, runs):
    formula, plain, rerun = [], [], []
    for _ in range(runs):
        lab.down()
        lab.up(*HOSTS)
        plain.append(timed(lambda: plain_bring_up(lab)))
        lab.down()
        lab.up(*HOSTS)
        formula.append(timed(lambda: formula_bring_up(lab)))
        rerun.append(timed(lambda: formula_bring_up(lab)))
    return {
        "bring_up_plain_script": summary(plain),
        "bring_up_orchestrate": summary(formula),
        "orchestrate_over_plain": round(statistics.median(formula) / statistics.median(plain), 2),
        "idempotent_orchestrate": summary(rerun),
    }


# -- report --------------------------------------------------------------

LABELS = {
    "cold_build": ("lab", "cold build: image + local apt repository", "bin/bench.py lab --cold"),
    "warm_up_4_hosts": ("lab", "warm `bin/lab up` of 4 hosts until all answer test.ping", "bin/bench.py lab"),
    "down_4_hosts": ("lab", "`bin/lab down` of 4 hosts", "bin/bench.py lab"),
    "idle_host_pss": ("lab", "memory (PSS) of an idle host", "bin/bench.py lab"),
    "master_pss": ("lab", "memory (PSS) of the salt-master", "bin/bench.py lab"),
    "salt_call_state": ("module", "`salt-call pgfailover.state` on a node, wall time", "bin/bench.py module"),
    "salt_call_test_true": (
        "module",
        "`salt-call test.true` on a node: salt-call start-up alone",
        "bin/bench.py module",
    ),
    "loaded_function_state": (
        "module",
        "`pgfailover.state` in a loaded minion (Caller)",
        "bin/bench.py module",
    ),
    "bring_up_plain_script": ("formula", "bring-up, plain pg_autoctl script", "bin/bench.py formula"),
    "bring_up_orchestrate": (
        "formula",
        "bring-up, `state.orchestrate pgfailover.orch`",
        "bin/bench.py formula",
    ),
    "idempotent_orchestrate": ("formula", "idempotent re-run of orchestrate", "bin/bench.py formula"),
}


def write_report(results):
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {results['machine']}. Date: {results['date']}. Commit: `{results['commit']}`.",
        "",
        "Reproduce with `make bench` (all sections) or `bin/bench.py SECTION`. Each row: median, min and max",
        "over the runs shown.",
        "",
        "| section | what | median | min | max | runs | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for section in ("lab", "module", "formula"):
        for key, value in results.get(section, {}).items():
            if isinstance(value, dict):
                _, label, command = LABELS[key]
                unit = value["unit"]
                lines.append(
                    f"| {section} | {label} | {value['median']} {unit} | {value['min']} {unit} | "
                    f"{value['max']} {unit} | {value['runs']} | `{command}` |"
                )
            else:
                lines.append(f"| {section} | {key.replace('_', ' ')} | {value} | | | | |")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sections", nargs="*", default=["lab", "module", "formula"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also rebuild the image and repository")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "results.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    results.update(
        machine=f"{platform.node()}: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, {platform.platform()}",
        date=datetime.date.today().isoformat(),
        commit=commit.stdout.strip(),
    )
    lab = Lab(log=lambda *_: None)
    try:
        for section in args.sections:
            print(f"bench: {section}", flush=True)
            if section == "lab":
                previous_cold = results.get("lab", {}).get("cold_build")
                results["lab"] = bench_lab(lab, args.runs, args.cold)
                if previous_cold and not args.cold:
                    results["lab"]["cold_build"] = previous_cold
            elif section == "module":
                results["module"] = bench_module(lab, args.runs)
            elif section == "formula":
                results["formula"] = bench_formula(lab, args.runs)
            print(json.dumps(results[section], indent=1), flush=True)
    finally:
        lab.down()
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    write_report(results)


if __name__ == "__main__":
    main()
