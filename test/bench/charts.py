"""
The benchmark's pictures, drawn from docs/benchmarks/results.json with
matplotlib: bring-up against cluster size, write downtime per scenario (median
bars, min-max whiskers), the timeline of one failover, and backup and restore
times against the database size.
"""

import itertools
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

STATE_COLOURS = {
    "primary": "#2b8a3e",
    "wait_primary": "#69db7c",
    "single": "#8ce99a",
    "secondary": "#1c7ed6",
    "catchingup": "#74c0fc",
    "wait_standby": "#a5d8ff",
    "draining": "#f59f00",
    "demote_timeout": "#e8590c",
    "demoted": "#c92a2a",
    "report_lsn": "#ae3ec9",
    "prepare_promotion": "#da77f2",
    "stop_replication": "#e599f7",
    "fast_forward": "#f783ac",
    "join_secondary": "#99e9f2",
    "maintenance": "#868e96",
}


def _whiskers(rows):
    medians = [r["median"] for r in rows]
    return medians, [
        [m - r["min"] for m, r in zip(medians, rows, strict=True)],
        [r["max"] - m for m, r in zip(medians, rows, strict=True)],
    ]


def bring_up(scaling, path):
    """Orchestrate and the plain script against the number of secondaries."""
    sizes = sorted(scaling, key=int)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, colour in (
        ("orchestrate", "state.orchestrate pgfailover.orch", "#1c7ed6"),
        ("plain_script", "plain pg_autoctl script", "#868e96"),
    ):
        measured = [size for size in sizes if scaling[size][key]]  # a size whose every run failed has none
        medians, errors = _whiskers([scaling[size][key] for size in measured])
        ax.errorbar(
            [int(s) for s in measured], medians, yerr=errors, marker="o", capsize=4, label=label, color=colour
        )
    ax.set_xlabel("secondaries (plus monitor and primary)")
    ax.set_ylabel("bare hosts to converged (s)")
    ax.set_xticks([int(s) for s in sizes])
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Bring-up: median of runs, min-max whiskers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def formations(measured, path):
    """Bring-up of one formation against three on one monitor, and the re-run at ten hosts."""
    rows = [
        ("1 formation x 3 nodes\n(4 hosts)", measured["bring_up_1_formation_3_nodes"]),
        ("3 formations x 3 nodes\n(10 hosts)", measured["bring_up_3_formations_3_nodes"]),
        ("re-run, 3 formations\n(0 changes)", measured["idempotent_orchestrate_10_hosts"]),
    ]
    medians, errors = _whiskers([row for _, row in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar([label for label, _ in rows], medians, yerr=errors, capsize=4, color="#1c7ed6")
    for bar, value in zip(bars, medians, strict=True):
        ax.text(
            bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{value:.0f} s", ha="center", va="bottom"
        )
    ax.set_ylabel("state.orchestrate pgfailover.orch (s)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Formations side by side: {measured['three_over_one']}x one formation's time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def downtime(scenarios, labels, path):
    """Write downtime per scenario."""
    keys = [key for key in labels if key in scenarios]
    medians, errors = _whiskers([scenarios[key]["downtime"] for key in keys])
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.barh([labels[key] for key in keys], medians, xerr=errors, capsize=4, color="#1c7ed6")
    for bar, value in zip(bars, medians, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.1f} s", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("write downtime through the formation URI (s)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Write downtime: median of runs, min-max whiskers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def timeline(record, path):
    """Each node's current state over time during one failover; the write outage shaded."""
    samples = record["samples"]
    nodes = sorted({name for sample in samples for name in sample["nodes"]})
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.7 * len(nodes)))
    seen = set()
    for lane, node in enumerate(nodes):
        spans = []
        for sample, following in itertools.pairwise(samples):
            state = sample["nodes"].get(node, [None])[0]
            if state:
                spans.append((sample["t"], following["t"] - sample["t"], state))
        for start, width, state in spans:
            colour = STATE_COLOURS.get(state, "#dee2e6")
            label = state if state not in seen else None
            seen.add(state)
            ax.broken_barh([(start, width)], (lane - 0.35, 0.7), facecolors=colour, label=label)
    ax.axvspan(0, record["downtime"], color="#fa5252", alpha=0.12, label="no write acknowledged")
    ax.axvline(0, color="black", linewidth=1)
    ax.text(0, -0.45, " fault", va="bottom", fontsize=8)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_xlabel("seconds since the fault")
    ax.set_title(
        f"Failover timeline ({record['scenario']}), current state of each node as the monitor saw it"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def backup_times(sizes, path):
    """Backup and restore times through the formula and by hand, against the database size."""
    scales = sorted(sizes, key=int)
    gigabytes = [sizes[s]["database_bytes"] / 2**30 for s in scales]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, colour, style in (
        ("full_formula", "full backup, orch.backup", "#1c7ed6", "-"),
        ("full_hand", "full backup, pgbackrest by hand", "#1c7ed6", "--"),
        ("restore_formula_step", "restore + recovery of a node, orch.restore step", "#2b8a3e", "-"),
        ("restore_hand", "restore of a node, pgbackrest by hand", "#2b8a3e", "--"),
        ("restore_formation", "whole formation, orch.restore (restore + re-clone)", "#e8590c", "-"),
    ):
        medians, errors = _whiskers([sizes[s][key] for s in scales])
        ax.errorbar(
            gigabytes, medians, yerr=errors, marker="o", capsize=4, label=label, color=colour, ls=style
        )
    ax.set_xlabel("database size (GiB, pgbench)")
    ax.set_ylabel("seconds")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_all(results, labels, out):
    """Write every chart the results allow; return their file names."""
    written = []
    scaling = results.get("formula", {}).get("bring_up_by_secondaries")
    if scaling:
        bring_up(scaling, os.path.join(out, "bring_up.png"))
        written.append("bring_up.png")
    failover = results.get("failover", {})
    if failover.get("scenarios"):
        downtime(failover["scenarios"], labels, os.path.join(out, "downtime.png"))
        written.append("downtime.png")
    if failover.get("timeline"):
        timeline(failover["timeline"], os.path.join(out, "failover_timeline.png"))
        written.append("failover_timeline.png")
    if results.get("formations", {}).get("bring_up_3_formations_3_nodes"):
        formations(results["formations"], os.path.join(out, "formations.png"))
        written.append("formations.png")
    sizes = results.get("backup", {}).get("sizes")
    if sizes:
        backup_times(sizes, os.path.join(out, "backup.png"))
        written.append("backup.png")
    return written
