"""Print the membership goal tables of the results page from the JSON result files.

    python -m bench.membership.report bench/membership/results/sim-*.json \\
        bench/membership/results/real-*.json

Simulator files hold one summary row per scenario and size (``simulate.py --json``);
real-process files hold one row per measurement (``run_real.py --json``), which this
script groups by scenario. Real figures in seconds are shown in rounds of the run's
interval, which every real file of one call must share.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

# Goal, scenario, target and unit of each row, in the order of the page.
SIMULATED = [
    ("G1 bootstrap", "bootstrap", 5, "rounds"),
    ("G1 bootstrap, 10% loss", "bootstrap_loss", 10, "rounds"),
    ("G2 leave, announced", "leave", 1, "rounds"),
    ("G2 leave, announcements lost", "leave_gossip_only", 5, "rounds"),
    ("G3 crash detected everywhere", "crash", 12, "rounds"),
    ("G4 false deaths, 10% loss", "soak_loss", 0, "deaths"),
    ("G4 false deaths, busy CPU (model)", "soak_busy", 0, "deaths"),
    ("G4 false deaths, 3 s stall every 30 s", "soak_stall", 0, "deaths"),
    ("G4 false deaths, starved node, 1% loss", "soak_starved", 0, "deaths"),
    ("G5 back alive after a 15 s stall", "long_stall", 5, "rounds"),
    ("G6a restart before detection", "restart_quick", 5, "rounds"),
    ("G6b restart after death", "restart_dead", 5, "rounds"),
    ("G6c all nodes restarted within 10 s", "restart_all", 10, "rounds"),
    ("G7 new address everywhere", "new_address", 5, "rounds"),
    ("G8 heal after a half/half split", "partition_half", 5, "rounds"),
    ("G8 heal after a 1/rest split", "partition_one", 5, "rounds"),
    ("G9 left entry dropped, no stale copy added back", "tombstone", 62, "rounds"),
    ("G10 full views after a late seed start", "seed_down", None, "rounds"),
    ("G10 seed crash detected", "seed_crash", 12, "rounds"),
    ("G11 traffic per node", "cost", 40, "KB/s"),
    ("G11 traffic per node, gzip bodies", "cost_gzip", 40, "KB/s"),
]

REAL = [
    ("G1 bootstrap", "bootstrap", 5, "rounds"),
    ("G1 bootstrap, 10% loss", "bootstrap_loss", 10, "rounds"),
    ("G2 exit after SIGTERM", "leave_exit", 2, "s"),
    ("G2 gone from every view", "leave", 1, "s"),
    ("G3 crash dead everywhere", "crash", 12, "s"),
    ("G4a false deaths, 10% loss", "soak_loss", 0, "deaths"),
    ("G4b false deaths, 2 busy loops", "soak_busy", 0, "deaths"),
    ("G4c false deaths, 3 s stall every 30 s", "soak_stall", 0, "deaths"),
    ("G5 back alive after a 15 s stall", "long_stall", 5, "rounds"),
    ("G6a restart before detection", "restart_quick", 5, "rounds"),
    ("G6b restart after death", "restart_after_death", 5, "rounds"),
    ("G6b restart after leave", "restart_after_leave", 5, "rounds"),
    ("G6c all nodes restarted within 10 s", "restart_all", 10, "rounds"),
    ("G7 new port everywhere", "new_port", 5, "rounds"),
    ("G8 heal after a 25/25 split", "partition_half", 5, "rounds"),
    ("G8 heal after a 49/1 split", "partition_one", 5, "rounds"),
    ("G9 left entry dropped everywhere", "tombstone", 62, "s"),
    ("G9 views that add a departed member back", "ghost", 0, "views"),
    ("G10 full views after a late seed start", "seed_down", None, "rounds"),
    ("G10 seed crash detected", "seed_crash", 12, "s"),
    ("G11 traffic per node, HTTP bytes", "cost_traffic", 40, "KB/s"),
    ("G11 CPU of the whole network", "cost_cpu", 0.5, "cores"),
]

# Fields of a real row that count what a goal forbids, besides its figure.
FORBIDDEN = (
    "false_deaths",
    "deaths",
    "deaths_after",
    "other_deaths",
    "old_address_live_again",
    "still_listed_by",
)


def show(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def simulated_table(rows: list[dict[str, Any]]) -> list[str]:
    sizes = sorted({row["nodes"] for row in rows})
    lines = [
        "| goal | N | target | p50 | p99 | max | runs | false deaths | violations | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for goal, scenario, target, unit in SIMULATED:
        for size in sizes:
            found = [
                r for r in rows if r["scenario"] == scenario and r["nodes"] == size
            ]
            if not found:
                continue
            row = found[-1]
            failed = len(row["failed_seeds"])
            result = "pass" if not failed else f"fail ({failed} of {row['seeds']})"
            if target is None and not failed:
                result = "no target"
            if row["never"]:
                result += f", {row['never']} never reached"
            lines.append(
                f"| {goal} | {size} | {show(target)} {unit} | {show(row['p50'])} | "
                f"{show(row['p99'])} | {show(row['max'])} | {row['seeds']} | "
                f"{row['false_deaths']} | {row['violations']} | {result} |"
            )
    return lines


def real_table(rows: list[dict[str, Any]], interval: float) -> list[str]:
    lines = [
        "| goal | target | p50 | p99 | max | runs | forbidden events | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for goal, scenario, target, unit in REAL:
        found = [row for row in rows if row["scenario"] == scenario]
        if not found:
            lines.append(f"| {goal} | {show(target)} {unit} | not run | | | | | |")
            continue
        values = [_in_unit(row, unit, interval) for row in found]
        reached = [value for value in values if value is not None]
        forbidden = sum(
            int(row.get(field) or 0) for row in found for field in FORBIDDEN
        )
        never = len(values) - len(reached)
        passed = (
            not never
            and not forbidden
            and (target is None or all(value <= target for value in reached))
        )
        p50 = nearest_rank(reached, 0.5) if reached else None
        p99 = nearest_rank(reached, 0.99) if reached else None
        maximum = max(reached) if reached else None
        result = "pass" if passed else "fail"
        if target is None and passed:
            result = "no target"
        if never:
            result += f", {never} never reached"
        lines.append(
            f"| {goal} | {show(target)} {unit} | {show(p50)} | {show(p99)} | "
            f"{show(maximum)} | {len(found)} | {forbidden} | {result} |"
        )
    return lines


def _in_unit(row: dict[str, Any], unit: str, interval: float) -> float | None:
    value = row["value"]
    if value is None:
        return None
    if unit == "rounds" and row["unit"] == "s":
        return round(value / interval, 2)
    return float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds per round of the real runs"
    )
    args = parser.parse_args(argv)

    simulated: list[dict[str, Any]] = []
    real: list[dict[str, Any]] = []
    for path in args.files:
        rows = json.loads(path.read_text())
        if rows and "seeds" in rows[0]:
            simulated += rows
        else:
            real += rows
    if simulated:
        print("\n".join(simulated_table(simulated)))
        print()
    if real:
        print("\n".join(real_table(real, args.interval)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
