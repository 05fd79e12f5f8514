"""hydra/sweeper=pareto: a multi-objective search of config keys on Optuna, run through the launcher, its study in a
journal file of the sweep directory; kill -9 of the driver, then the same command finishes the study without running
a finished trial again."""

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cli import run_cli, start_cli, wait_for_writes
from toponets_exp.errors import ConfigError
from toponets_exp.search.objectives import Objective, objectives
from toponets_exp.search.space import overrides, search_space

TINY_SEARCH = ["-m", "hydra/sweeper=pareto", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
               "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "data.image_size=8", "data.batch_size=16",
               "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "eval.after_train=false",
               "+hydra.sweeper.params.topo.weight={type: float, low: 0.1, high: 100, log: true}",
               "+hydra.sweeper.objectives.val_acc={path: best_score, direction: maximize}",
               "+hydra.sweeper.objectives.topo={path: topo.mean_unweighted, direction: minimize}",
               "hydra.sweeper.startup_trials=2"]


def study_of(sweep: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sweep / "study.journal")))
    return optuna.load_study(study_name="search", storage=storage)


def test_search_space_and_overrides() -> None:
    space = search_space({"topo.weight": {"type": "float", "low": 0.1, "high": 100, "log": True},
                          "topo": ["topoloss", "wiring"], "seed": {"type": "int", "low": 0, "high": 3}})
    assert space["topo.weight"] == optuna.distributions.FloatDistribution(0.1, 100, log=True)
    assert space["topo"] == optuna.distributions.CategoricalDistribution(("topoloss", "wiring"))
    assert overrides({"topo.weight": 0.1 + 0.2, "topo": "wiring", "seed": 2}) == [
        "topo.weight=0.30000000000000004", "topo=wiring", "seed=2"]
    for bad, message in [({"x": {"type": "float", "low": 0, "high": 1, "log": True}}, "> 0 with log"),
                         ({"x": {"type": "normal"}}, "accepted: {type: float|int"),
                         ({"x": {"type": "categorical", "choices": []}}, "non-empty list"), ({}, "is empty")]:
        with pytest.raises(ConfigError, match=message):
            search_space(bad)


def test_objectives_are_validation_numbers_read_from_the_run(tmp_path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"best_score": 0.75, "topo": {"mean_unweighted": 0.5}}))
    (tmp_path / "metrics.csv").write_text("step,val/acc\n1,0.5\n2,\n3,0.7\n")
    goals = objectives({"val": {"path": "best_score", "direction": "maximize"},
                        "last": {"path": "metrics:val/acc", "direction": "maximize"},
                        "topo": {"path": "topo.mean_unweighted", "direction": "minimize"}})
    assert [goal.read(tmp_path) for goal in goals] == [0.75, 0.7, 0.5]
    assert Objective("x", "eval.weight_smoothness", "maximize").read(tmp_path) is None
    for path, message in [("test.acc", "is a test metric"), ("metrics:test/acc", "is a test metric"),
                          ("eval.tdann_smoothness", "measured on the evaluation's stimuli")]:
        with pytest.raises(ConfigError, match=message):
            objectives({"bad": {"path": path, "direction": "maximize"}})
    with pytest.raises(ConfigError, match="direction='up'"):
        objectives({"bad": {"path": "best_score", "direction": "up"}})


@pytest.mark.slow
def test_kill_9_of_the_driver_then_the_same_command_finishes_the_study(tmp_path) -> None:
    """4 trials, one at a time: the driver is killed after the first trial's summary; the same command tells the
    study the rest, the first trial's run untouched (its summary the same file), every trial complete with its two
    objectives and its run directory <sweep>/<number>; then the search's report."""
    sweep = tmp_path / "search"
    args = [*TINY_SEARCH, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={sweep}"]
    proc = start_cli(*args)
    wait_for_writes(sweep / "0" / "summary.json", 1, proc)
    proc.kill()
    proc.wait()
    first = (sweep / "0" / "summary.json").stat().st_mtime_ns
    again = run_cli(*args)
    assert again.returncode == 0, again.stdout[-3000:]
    trials = study_of(sweep).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4 and [t.number for t in trials] == [0, 1, 2, 3]
    assert (sweep / "0" / "summary.json").stat().st_mtime_ns == first
    for trial in trials:
        summary = json.loads((sweep / str(trial.number) / "summary.json").read_text())
        assert trial.values == [summary["best_score"], summary["topo"]["mean_unweighted"]]
        assert summary["topo"]["weight"] == pytest.approx(trial.params["topo.weight"])
    assert len({t.params["topo.weight"] for t in trials}) == 4 and "search search: 4 trials told" in again.stdout
    report_of_the_search(sweep, tmp_path / "report", study_of(sweep))


def report_of_the_search(sweep: Path, out: Path, study: optuna.Study) -> None:
    """task=report on a search directory: front_<name>.md (the front's searched values, validation objectives and
    test numbers), front_<name>.csv (every trial) and figures/front_<name>.png, beside the sweep table."""
    proc = run_cli("task=report", f"report.sweep_dir={sweep}", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    front = (out / "front_search.md").read_text()
    assert "Objectives (validation): val_acc (maximize), topo (minimize)." in front
    table = [line for line in front.splitlines() if line.startswith("| ")]
    assert table[0] == "| trial | param:topo.weight | val_acc | topo | test_acc | test_loss |"
    assert sorted(int(line.split("|")[1]) for line in table[1:]) == sorted(t.number for t in study.best_trials)
    assert (out / "figures" / "front_search.png").is_file() and (out / "report.md").is_file()
    assert len((out / "front_search.csv").read_text().splitlines()) == 1 + len(study.trials)


def test_a_failed_trial_is_told_failed_and_the_search_goes_on(tmp_path) -> None:
    """A trial whose run has no value of an objective (here: a summary.json path no run writes) is failed, not a
    number; the search still tells n_trials trials."""
    sweep = tmp_path / "search"
    args = [a for a in TINY_SEARCH if "objectives.topo" not in a]
    proc = run_cli(*args, "+hydra.sweeper.objectives.missing={path: no.such.value, direction: minimize}",
                   "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [t.state for t in study_of(sweep).get_trials()] == [TrialState.FAIL] * 2
    assert "has no value of missing: failed" in proc.stdout


def test_a_sampler_is_named_and_seeded_by_the_study_history() -> None:
    from toponets_exp.search.study import sampler

    first, again, later = (sampler("random", 0, 4, h) for h in (0, 0, 3))
    draw = [s.sample_independent(None, None, "x", optuna.distributions.FloatDistribution(0, 1)) for s in
            (first, again, later)]
    assert draw[0] == draw[1] != draw[2]
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler='bogus': accepted: tpe, nsga2, gp, random"):
        sampler("bogus", 0, 4)


def test_search_tau_digits_searches_tau_on_validation_accuracy_and_weight_smoothness() -> None:
    from test_experiments import composed

    cfg = composed("search_tau_digits", "hydra.runtime.output_dir=/tmp/out")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.toponets_pareto.pareto_sweeper.ParetoSweeper"
    assert sweeper.n_trials == 12 and sweeper.sampler == "tpe"
    assert search_space(sweeper.params) == {"topo.weight": optuna.distributions.FloatDistribution(0.1, 100, log=True)}
    assert [(g.name, g.path, g.direction) for g in objectives(sweeper.objectives)] == [
        ("val_acc", "best_score", "maximize"), ("weight_smoothness", "eval.weight_smoothness", "maximize")]


def test_a_sweep_directory_holds_one_study_of_its_objectives(tmp_path) -> None:
    from toponets_exp.search.study import open_study, sampler

    make = lambda history: sampler("random", 0, 0, history)  # noqa: E731
    first = open_study(tmp_path, "search", objectives({"a": {"path": "best_score", "direction": "maximize"}}), make)
    first.tell(first.ask(), 1.0)
    again = open_study(tmp_path, "search", objectives({"a": {"path": "best_score", "direction": "maximize"}}), make)
    assert [t.values for t in again.trials] == [[1.0]]
    with pytest.raises(ConfigError, match="has objectives \\['a'\\] \\(maximize\\), not \\['b'\\] \\(minimize\\)"):
        open_study(tmp_path, "search", objectives({"b": {"path": "best_score", "direction": "minimize"}}), make)
