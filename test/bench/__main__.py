"""
make bench (bin/bench): measure the lab, the execution module and the formula on this
machine and record the numbers (not a test: nothing here passes or fails).

    bin/bench [lab] [module] [formula] [failover] [backup] [formations] [--runs N] [--cold]
    bin/bench report      # only redraw the tables and charts from results.json

Writes docs/benchmarks/results.json (merged by section), regenerates
docs/benchmarks/README.md with the machine, date and commit, and draws the
charts (docs/benchmarks/*.png).
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
import tempfile
import time

from bench import backup, charts, failover, formations
from lab import hosts, image, master
from lab.paths import CACHE, REPO
from lab.session import Lab

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


def plain_bring_up(lab, nodes):
    """The cluster built by test/bench/plain_cluster.sh: install everywhere, monitor, primary, secondaries."""

    def on(host, *args):
        with open(PLAIN) as script:
            lab.run(host, "sh", "-s", "--", *args, stdin=script)

    with concurrent.futures.ThreadPoolExecutor(len(nodes) + 1) as pool:
        list(pool.map(lambda h: on(h, "install"), ["mon", *nodes]))
    on("mon", "monitor", "mon")
    on(nodes[0], "node", nodes[0], "mon")
    with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda h: on(h, "node", h, "mon"), nodes[1:]))
    on("mon", "converged", str(len(nodes)))


def fresh_hosts(lab, hosts_up):
    lab.down()
    lab.up(*hosts_up)


def bench_formula(lab, runs, workdir):
    """Bring-up against cluster size (1 to 4 secondaries) and idempotent re-runs on 2 secondaries."""
    scaling, rerun, highstate = {}, [], []
    for secondaries in (1, 2, 3, 4):
        nodes = [f"pg{i}" for i in range(1, secondaries + 2)]
        plain, formula, failed, stalled, plain_stalled = [], [], [], 0, 0
        for _ in range(runs):
            fresh_hosts(lab, ["mon", *nodes])
            plain.append(timed(lambda nodes=nodes: plain_bring_up(lab, nodes)))
            plain_stalled += failover.keeper_stalls(lab, nodes, units="pgplain") > 0
            fresh_hosts(lab, ["mon", *nodes])
            failover.install_pillar(lab, workdir, nodes, sync_standbys=0 if secondaries == 1 else 1)
            try:
                formula.append(timed(lambda: failover.orchestrate(lab)))
            except RuntimeError as exc:  # counted and shown, not timed; the next run starts from bare hosts
                failed.append(str(exc).splitlines()[0][:300])
                print(f"bench: {secondaries} secondaries: orchestrate failed: {exc}", flush=True)
                continue
            stalled += failover.keeper_stalls(lab, nodes) > 0
            if secondaries == 2:
                rerun.append(timed(lambda: failover.orchestrate(lab)))
                highstate.append(timed(lambda: lab.salt("*", "state.highstate")))
        scaling[str(secondaries)] = {
            "plain_script": summary(plain),
            "orchestrate": summary(formula) if formula else None,
            "ratio": round(statistics.median(formula) / statistics.median(plain), 2) if formula else None,
            "orchestrate_failures": failed,
            "orchestrate_runs_with_stall": stalled,
            "plain_runs_with_stall": plain_stalled,
        }
        print(f"bench: {secondaries} secondaries: {json.dumps(scaling[str(secondaries)])}", flush=True)
    return {
        "bring_up_by_secondaries": scaling,
        "bring_up_plain_script": scaling["2"]["plain_script"],
        "bring_up_orchestrate": scaling["2"]["orchestrate"],
        "orchestrate_over_plain": scaling["2"]["ratio"],
        "idempotent_orchestrate": summary(rerun),
        "idempotent_highstate": summary(highstate),
    }


# -- failover ------------------------------------------------------------

SCENARIO_LABELS = {
    "switchover": "switchover (`orch.switchover`)",
    "rolling": "rolling maintenance of 3 nodes (`orch.rolling`)",
    "primary_killed_default": "primary's host killed, profile default",
    "primary_killed_fast": "primary's host killed, profile fast",
    "primary_partitioned_fast": "primary partitioned, profile fast",
}


def bench_failover(lab, runs, workdir):
    """Write downtime and lost rows per scenario; one timeline of a fast-profile failover."""
    nodes = ["pg1", "pg2", "pg3"]
    fresh_hosts(lab, ["mon", *nodes])
    failover.install_pillar(lab, workdir, nodes, profile="default")
    failover.orchestrate(lab)
    plan = [
        ("switchover", "default", lambda timeline: failover.switchover(lab)),
        ("rolling", "default", lambda timeline: failover.rolling(lab)),
        ("primary_killed_default", "default", lambda timeline: failover.kill_primary(lab)),
        ("primary_killed_fast", "fast", lambda timeline: failover.kill_primary(lab, timeline)),
        ("primary_partitioned_fast", "fast", lambda timeline: failover.partition_primary(lab)),
    ]
    scenarios, timeline, profile = {}, {}, "default"
    for key, wanted_profile, run in plan:
        if wanted_profile != profile:
            failover.install_pillar(lab, workdir, nodes, profile=wanted_profile)
            failover.orchestrate(lab)
            profile = wanted_profile
        measured = []
        for attempt in range(runs):
            measured.append(run(timeline if attempt == 0 and not timeline else None))
        scenarios[key] = {
            "downtime": summary([m["downtime"] for m in measured]),
            "lost": sum(m["lost"] for m in measured),
            "runs_with_stall": sum(m["stalls"] > 0 for m in measured),
        }
        print(f"bench: {key}: {json.dumps(scenarios[key])}", flush=True)
    return {"scenarios": scenarios, "timeline": timeline}


# -- report --------------------------------------------------------------

LABELS = {
    "cold_build": ("lab", "cold build: image + local apt repository", "bin/bench lab --cold"),
    "warm_up_4_hosts": ("lab", "warm `bin/lab up` of 4 hosts until all answer test.ping", "bin/bench lab"),
    "down_4_hosts": ("lab", "`bin/lab down` of 4 hosts", "bin/bench lab"),
    "idle_host_pss": ("lab", "memory (PSS) of an idle host", "bin/bench lab"),
    "master_pss": ("lab", "memory (PSS) of the salt-master", "bin/bench lab"),
    "salt_call_state": ("module", "`salt-call pgfailover.state` on a node, wall time", "bin/bench module"),
    "salt_call_test_true": (
        "module",
        "`salt-call test.true` on a node: salt-call start-up alone",
        "bin/bench module",
    ),
    "loaded_function_state": (
        "module",
        "`pgfailover.state` in a loaded minion (Caller)",
        "bin/bench module",
    ),
    "bring_up_plain_script": ("formula", "bring-up, plain pg_autoctl script", "bin/bench formula"),
    "bring_up_orchestrate": (
        "formula",
        "bring-up, `state.orchestrate pgfailover.orch`",
        "bin/bench formula",
    ),
    "idempotent_orchestrate": ("formula", "idempotent re-run of orchestrate", "bin/bench formula"),
    "idempotent_highstate": (
        "formula",
        "idempotent `state.highstate` on 4 hosts (converged)",
        "bin/bench formula",
    ),
    "bring_up_1_formation_3_nodes": (
        "formations",
        "bring-up of 1 formation of 3 nodes (4 hosts)",
        "bin/bench formations",
    ),
    "bring_up_3_formations_3_nodes": (
        "formations",
        "bring-up of 3 formations of 3 nodes on one monitor (10 hosts)",
        "bin/bench formations",
    ),
    "idempotent_orchestrate_10_hosts": (
        "formations",
        "idempotent re-run of orchestrate, 3 formations (10 hosts)",
        "bin/bench formations",
    ),
    "lab_pss_10_hosts": ("formations", "memory (PSS) of the 10-host lab, idle", "bin/bench formations"),
}


def _cell(value):
    unit = value["unit"]
    return f"{value['median']} {unit} | {value['min']} {unit} | {value['max']} {unit} | {value['runs']}"


STALL_NOTE = (
    "A run with a 10 s stall is one where a keeper logged pg_autoctl's `Failed to ensure that Postgres is "
    "running` (its hard-coded 10 s wait for its own postgres controller ran out; counted from the hosts' "
    "journals)."
)


def write_report(results):
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {results['machine']}. Date: {results['date']}. Last run's commit: `{results['commit']}`.",
        "Sections were measured at: "
        + ", ".join(
            f"{section} `{results[section].get('commit', '?')}`"
            for section in ("lab", "module", "formula", "failover", "backup", "formations")
            if section in results
        )
        + ".",
        "",
        "Reproduce with `make bench` (all sections) or `bin/bench SECTION`. Each row: median, min and max",
        "over the runs shown.",
        "",
        "| section | what | median | min | max | runs | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for section in ("lab", "module", "formula", "formations"):
        for key, value in results.get(section, {}).items():
            if key in LABELS:
                _, label, command = LABELS[key]
                lines.append(f"| {section} | {label} | {_cell(value)} | `{command}` |")
            elif key != "commit" and not isinstance(value, dict):
                lines.append(f"| {section} | {key.replace('_', ' ')} | {value} | | | | |")
    scaling = results.get("formula", {}).get("bring_up_by_secondaries")
    if scaling:
        lines += [
            "",
            "## Bring-up against cluster size (`bin/bench formula`)",
            "",
            "Bare hosts (packages from the lab's local repository) to a converged formation: monitor,",
            "primary and N secondaries, the secondaries in parallel in both cases.",
            STALL_NOTE,
            "",
            "| secondaries | orchestrate: median (min-max, runs) | plain script: median (min-max, runs) "
            "| ratio | runs with a 10 s stall: orchestrate / plain | failed orchestrate runs |",
            "|---|---|---|---|---|---|",
        ]
        for size in sorted(scaling, key=int):
            row = scaling[size]
            orch, plain = row["orchestrate"], row["plain_script"]
            failures = row.get("orchestrate_failures", [])
            orch_cell = "none"
            if orch:
                orch_cell = f"{orch['median']} s ({orch['min']}-{orch['max']}, {orch['runs']})"
            ratio = f"{row['ratio']}x" if row["ratio"] else "-"
            lines.append(
                f"| {size} | {orch_cell} | "
                f"{plain['median']} s ({plain['min']}-{plain['max']}, {plain['runs']}) | {ratio} | "
                f"{row.get('orchestrate_runs_with_stall', '-')} / {row.get('plain_runs_with_stall', '-')} | "
                f"{len(failures)}{': ' + '; '.join(failures) if failures else ''} |"
            )
        lines += ["", "![bring-up](bring_up.png)"]
    measured = results.get("formations")
    if measured:
        lines += [
            "",
            "## Formations side by side (`bin/bench formations`)",
            "",
            "Bare hosts to converged: three formations of three nodes on one monitor (ten hosts, one",
            f"orchestrate) took {measured['three_over_one']}x the time of one formation of three nodes (four",
            f"hosts) in the same run; the re-run at ten hosts reported {measured['idempotent_changes']}",
            "changes. Target: at most 1.5x "
            f"({'met' if measured['three_over_one'] <= 1.5 else 'not met'} on this machine, whose ten lab",
            f"hosts share {os.cpu_count()} cores).",
            "",
            "![formations](formations.png)",
        ]
    scenarios = results.get("failover", {}).get("scenarios")
    if scenarios:
        lines += [
            "",
            "## Write downtime (`bin/bench failover`)",
            "",
            "A client (psycopg) commits numbered rows through the formation URI",
            "(target_session_attrs=read-write, TLS, password) while the scenario runs; downtime is the time",
            "from the last acknowledged commit before the outage to the first one after it; lost rows are",
            "acknowledged commits missing afterwards.",
            "Cluster: monitor, primary, 2 secondaries, number_sync_standbys 1.",
            STALL_NOTE,
            "",
            "| scenario | median | min | max | runs | runs with a 10 s stall | acknowledged rows lost |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, label in SCENARIO_LABELS.items():
            if key in scenarios:
                row = scenarios[key]
                stalls = row.get("runs_with_stall", "-")
                lines.append(f"| {label} | {_cell(row['downtime'])} | {stalls} | {row['lost']} |")
        lines += ["", "![write downtime](downtime.png)"]
    if results.get("failover", {}).get("timeline"):
        lines += ["", "![failover timeline](failover_timeline.png)"]
    lines += backup_report(results.get("backup"))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def backup_report(measured):
    """The backup section's tables: formula against pgBackRest by hand, restore against size, RPO."""
    if not measured:
        return []
    lines = [
        "",
        "## Backups and restore (`bin/bench backup`)",
        "",
        "pgbench databases on the lab (monitor, 3 nodes, a repository host; lz4, no encryption, backups",
        "read from a standby). Formula: `pgfailover.orch.backup` and the restore step of",
        "`pgfailover.orch.restore` (pgBackRest restore, then recovery until promotion); by hand: the same",
        "`pgbackrest` command on the same host (the restore by hand copies the files only). Whole formation:",
        "`pgfailover.orch.restore` from start to converged (set aside, restore, recovery, registration,",
        "re-clone of 2 secondaries).",
        "Each cell: median (min-max).",
        "",
        "| scale | database | full: formula / by hand (overhead) | incremental: formula / by hand (overhead) "
        "| restore of a node: formula step / by hand | whole formation | runs |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(value):
        return f"{value['median']} s ({value['min']}-{value['max']})"

    for scale in sorted(measured.get("sizes", {}), key=int):
        row = measured["sizes"][scale]
        lines.append(
            f"| {scale} | {row['database_bytes'] / 2**30:.2f} GiB "
            f"| {cell(row['full_formula'])} / {cell(row['full_hand'])} ({row['full_overhead']:+.0%}) "
            f"| {cell(row['incr_formula'])} / {cell(row['incr_hand'])} ({row['incr_overhead']:+.0%}) "
            f"| {cell(row['restore_formula_step'])} / {cell(row['restore_hand'])} "
            f"| {cell(row['restore_formation'])} | {row['runs']} |"
        )
    rpo = measured.get("rpo_quiet_seconds")
    if rpo:
        lines += [
            "",
            f"RPO of a quiet primary (archive_timeout {measured['archive_timeout']} s): from a commit to",
            f"its WAL file archived in the repository, {cell(rpo)} over {rpo['samples']} commits. Under",
            "writes, WAL files fill and are archived sooner.",
        ]
    return [*lines, "", "![backup and restore times](backup.png)"]


def main():
    parser = argparse.ArgumentParser(
        prog="bin/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sections", nargs="*", default=["lab", "module", "formula", "failover", "backup"])
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
    if args.sections == ["report"]:
        charts.draw_all(results, SCENARIO_LABELS, OUT)
        write_report(results)
        return
    results.update(
        machine=f"{platform.node()}: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, {platform.platform()}",
        date=datetime.date.today().isoformat(),
        commit=commit.stdout.strip(),
    )
    lab = Lab(log=lambda *_: None)
    workdir = tempfile.mkdtemp(prefix="pgfailover-bench-")
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
                results["formula"] = bench_formula(lab, args.runs, workdir)
            elif section == "failover":
                results["failover"] = bench_failover(lab, args.runs, workdir)
            elif section == "backup":
                results["backup"] = backup.bench_backup(lab, args.runs, workdir)
            elif section == "formations":
                results["formations"] = formations.bench_formations(
                    lab, args.runs, workdir, timed, summary, pss_kib
                )
            results[section]["commit"] = results["commit"]
            print(json.dumps(results[section], indent=1), flush=True)
            with open(path, "w") as f:  # each finished section is kept even if a later one fails
                json.dump(results, f, indent=1)
    finally:
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    charts.draw_all(results, SCENARIO_LABELS, OUT)
    write_report(results)


if __name__ == "__main__":
    main()
