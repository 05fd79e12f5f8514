"""A search directory's study (hydra/sweeper=pareto): every trial in objective space with the Pareto front, and the
front's runs with their searched values, validation objectives and test numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from toponets_exp.brain.plots import save_png
from toponets_exp.search.study import JOURNAL

TEST_KEYS = ("acc", "loss", "ppl")


def is_search(sweep_dir: Path) -> bool:
    """Whether a sweep directory holds a search's study."""
    return (Path(sweep_dir) / JOURNAL).is_file()


def _study(sweep_dir: Path) -> Any:
    """The search's study, read from its journal (Optuna imported only here)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(Path(sweep_dir) / JOURNAL)))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def trial_rows(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(one row per trial: number, state, on the front, searched values, objectives, test numbers, run dir; the
    objective names; their directions)."""
    study = _study(sweep_dir)
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    front = {t.number for t in study.best_trials}
    rows = []
    for trial in study.trials:
        run_dir = Path(sweep_dir) / str(trial.number)
        summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
        row = {"trial": trial.number, "state": trial.state.name.lower(), "front": trial.number in front,
               **{f"param:{k}": v for k, v in trial.params.items()},
               **{name: (trial.values[i] if trial.values else None) for i, name in enumerate(names)},
               **{f"test_{k}": summary.get("test", {}).get(k) for k in TEST_KEYS}, "run_dir": str(run_dir)}
        rows.append(row)
    return rows, names, [d.name.lower() for d in study.directions]


def front_markdown(rows: list[dict[str, Any]], names: list[str], directions: list[str], title: str) -> str:
    """The front's runs (searched values, validation objectives, test numbers), then how many trials ended how."""
    columns = [c for c in rows[0] if c not in ("state", "front", "run_dir")] if rows else []
    columns = [c for c in columns if any(r[c] is not None for r in rows)]
    lines = [f"# {title}", "", f"{len(rows)} trials: " + ", ".join(
        f"{sum(r['state'] == s for r in rows)} {s}" for s in sorted({r["state"] for r in rows})), "",
        "Objectives (validation): " + ", ".join(f"{n} ({d})" for n, d in zip(names, directions)) + ".", "",
        "## Pareto front", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in sorted((r for r in rows if r["front"]), key=lambda r: r[names[0]]):
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def plot_front(rows: list[dict[str, Any]], names: list[str], directions: list[str], path: Path) -> Path | None:
    """Every complete trial in the plane of the first two objectives, the front's joined and labelled by trial."""
    done = [r for r in rows if r["state"] == "complete"]
    if len(names) < 2 or not done:
        return None
    x, y = names[:2]
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    ax.scatter([r[x] for r in done], [r[y] for r in done], c="0.6", s=20, label="trials")
    front = sorted((r for r in done if r["front"]), key=lambda r: r[x])
    ax.plot([r[x] for r in front], [r[y] for r in front], "o-", c="C3", label="Pareto front")
    for row in front:
        ax.annotate(str(row["trial"]), (row[x], row[y]), fontsize="x-small", xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel(f"{x} ({directions[0]})")
    ax.set_ylabel(f"{y} ({directions[1]})")
    ax.set_title(f"{len(done)} trials, {len(front)} on the front")
    ax.legend(fontsize="small")
    return save_png(fig, path)
