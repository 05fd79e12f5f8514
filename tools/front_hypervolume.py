"""The hypervolume of the front of each set of runs (a sweep or search directory, optionally one seed of it) in the
plane of two objectives, with one reference point for all: how much of the trade-off each set found.

    python tools/front_hypervolume.py outputs/multirun/paper_trends_digits/<t> outputs/search/search_tau_digits/<t> \
        --objective best_score:maximize --objective eval.weight_smoothness:maximize --reference 0.1,0 --by-seed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toponets_exp.search.objectives import Objective
from toponets_exp.sweep_report.hypervolume import hypervolume_2d
from toponets_exp.sweep_report.table import pareto_front


def run_points(sweep: Path, goals: list[Objective]) -> list[tuple[int, tuple[float, float]]]:
    """(seed, objective values) of every finished run of a sweep directory (<sweep>/<num>/summary.json)."""
    points = []
    for run in sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        values = [goal.read(run) for goal in goals]
        if (run / "summary.json").is_file() and None not in values:
            points.append((json.loads((run / "summary.json").read_text())["seed"], tuple(values)))
    return points


def rows(sweeps: list[Path], goals: list[Objective], reference: tuple[float, float], by_seed: bool) -> list[str]:
    """One markdown row per set: directory (and seed), runs, front size, hypervolume."""
    directions = (goals[0].direction, goals[1].direction)
    out = []
    for sweep in sweeps:
        points = run_points(sweep, goals)
        seeds = sorted({seed for seed, _ in points}) if by_seed else [None]
        for seed in seeds:
            chosen = [p for s, p in points if seed is None or s == seed]
            signed = [tuple(v if d == "maximize" else -v for v, d in zip(p, directions)) for p in chosen]
            front = sum(pareto_front(signed))
            volume = hypervolume_2d(chosen, reference, directions)
            out.append(f"| {sweep} | {'all' if seed is None else seed} | {len(chosen)} | {front} | {volume:.5g} |")
    return out


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--objective", action="append", required=True, help="summary.json path:direction (twice)")
    parser.add_argument("--reference", required=True, help="x,y: the reference point (worse than every run)")
    parser.add_argument("--by-seed", action="store_true", help="one row per seed of each directory, then all")
    args = parser.parse_args()
    goals = [Objective(spec.rsplit(":", 1)[0], *spec.rsplit(":", 1)) for spec in args.objective]
    if len(goals) != 2:
        parser.error("give exactly two --objective")
    x, y = (float(v) for v in args.reference.split(","))
    lines = ["| runs of | seed | runs | on the front | hypervolume |", "|---|---|---|---|---|"]
    lines += rows(args.sweeps, goals, (x, y), False)
    if args.by_seed:
        lines += rows(args.sweeps, goals, (x, y), True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
