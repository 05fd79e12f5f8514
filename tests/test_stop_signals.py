"""Inside a Slurm job a stop or requeue signal ends the long phases around training within seconds: the unit
placement before the first step (nothing saved) and the evaluation after the last (the run stays resumable).

run.py runs in a subprocess; the job is simulated by SLURM_JOB_ID and a stand-in `scontrol` that records its
arguments, and SIGTERM starts ignored, as submitit's handler (which only logs it) leaves it outside our phases."""

import csv
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cli import cli_env, run_cli, start_cli
from toponets_exp.resume.metric_rows import METRIC_ROWS
from toponets_exp.resume.stop import current, stop_if_caught, stopping_on_signals

JOB = "4242"
SMALL = ["trainer.max_steps=1", "trainer.limit_val_batches=0", "trainer.limit_test_batches=1", "data.image_size=8",
         "data.batch_size=16", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "topo.layers=[layer3.0.conv1.conv]"]
EVALUATED = [*SMALL, "eval.after_train=true", "eval.gratings=false", "eval.efficiency=false"]
STOP_WITHIN = 10.0  # seconds from the signal to the exit, the interpreter's shutdown included


def job_env(tmp_path: Path) -> dict[str, str]:
    """A Slurm job's environment whose `scontrol` appends its arguments to tmp_path/scontrol.args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.args"}\n')
    fake.chmod(0o755)
    return cli_env(SLURM_JOB_ID=JOB, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def scontrol_calls(tmp_path: Path) -> list[str]:
    """The argument lines the stand-in scontrol of `job_env` recorded."""
    recorded = tmp_path / "scontrol.args"
    return recorded.read_text().splitlines() if recorded.exists() else []


def signal_when_logged(args: list[str], env: dict[str, str], log: Path, line: str | Callable[[], bool],
                       sig: signal.Signals) -> tuple[int, float]:
    """Start run.py ARGS and send `sig` once its output shows `line` (or `line()` is true): (its exit status,
    seconds from the signal to the exit)."""
    proc = start_cli(*args, env=env, log=log, ignored=(signal.SIGTERM,))
    ready = line if callable(line) else lambda: line in log.read_text()
    deadline = time.monotonic() + 120
    try:
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, f"not {line!r}:\n{log.read_text()[-3000:]}"
            time.sleep(0.05)
        proc.send_signal(sig)
        sent = time.monotonic()
        try:
            status = proc.wait(timeout=3 * STOP_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run.py went on {3 * STOP_WITHIN:.0f} s after {sig.name}:\n{log.read_text()[-3000:]}")
        return status, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_flag_handles_the_signals_inside_a_job_only_and_gives_them_back(monkeypatch):
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with stopping_on_signals("never") as signals:
        assert not signals.installed and current() is None and signal.getsignal(signal.SIGTERM) is before
    monkeypatch.setenv("SLURM_JOB_ID", JOB)
    with pytest.raises(SystemExit) as stopped, stopping_on_signals("the run is resumable") as signals:
        assert current() is signals
        stop_if_caught("a phase")  # nothing caught yet: goes on
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.caught == signal.SIGTERM
        stop_if_caught("a phase")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before and current() is None


@pytest.mark.parametrize("sig,requeued", [(signal.SIGTERM, []), (signal.SIGUSR1, [f"requeue {JOB}"])],
                         ids=["TERM exits", "USR1 requeues"])
def test_a_signal_during_unit_placement_stops_it_before_training(tmp_path, sig, requeued):
    out, log = tmp_path / "run", tmp_path / "run.out"
    args = [*SMALL, "eval.after_train=false", "topo.positions=swapopt", "topo.swapopt.steps=1000000",
            f"hydra.run.dir={out}"]
    status, seconds = signal_when_logged(args, job_env(tmp_path), log, "Unit placement (topo.positions=swapopt)", sig)
    text = log.read_text()
    assert status == 128 + sig and seconds < STOP_WITHIN, (status, seconds, text[-3000:])
    assert f"Caught {sig.name} during unit placement: stopping; before training, nothing saved; the requeued job " \
           "places the units again" in text
    assert not list(out.rglob("*.ckpt"))  # no checkpoint holds a placement, half-done or whole
    assert scontrol_calls(tmp_path) == requeued


def test_a_term_during_training_saves_the_state_of_its_step_and_exits_143(tmp_path):
    out, log = tmp_path / "run", tmp_path / "run.out"
    args = [*SMALL, "trainer.max_steps=2000", "trainer.log_every_n_steps=1", "checkpoint.every_n_train_steps=0",
            "eval.after_train=false", f"hydra.run.dir={out}"]
    metrics = out / "metrics.csv"
    status, seconds = signal_when_logged(args, job_env(tmp_path), log, lambda: metrics.is_file() and len(
        metrics.read_text().splitlines()) > 4, signal.SIGTERM)
    text = log.read_text()
    assert status == 128 + signal.SIGTERM and seconds < STOP_WITHIN, (status, seconds, text[-3000:])
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert f"Saved {out / 'checkpoints' / 'last.ckpt'} at step {state['global_step']} after SIGTERM" in text
    rows = list(csv.DictReader(metrics.open()))
    kept = rows[:state[METRIC_ROWS]]  # what a resumed run keeps: every row of the steps before the saved one
    assert 0 < state["global_step"] < 2000 and {int(r["step"]) for r in kept} == set(range(state["global_step"]))
    assert all(int(r["step"]) >= state["global_step"] for r in rows[state[METRIC_ROWS]:])


@pytest.fixture(scope="module")
def stopped_evaluation(tmp_path_factory) -> tuple[Path, str, int, float]:
    """A run trained one step in a Slurm job and sent SIGTERM as its evaluation began: (its directory, output,
    exit status, seconds from the signal to the exit)."""
    tmp = tmp_path_factory.mktemp("stopped")
    out, log = tmp / "run", tmp / "run.out"
    status, seconds = signal_when_logged([*EVALUATED, f"hydra.run.dir={out}"], job_env(tmp), log,
                                         "Evaluation: recording", signal.SIGTERM)
    return out, log.read_text(), status, seconds


def test_a_term_during_the_evaluation_after_training_stops_it(stopped_evaluation):
    out, text, status, seconds = stopped_evaluation
    assert status == 128 + signal.SIGTERM and seconds < STOP_WITHIN, (status, seconds, text[-3000:])
    (line,) = [ln for ln in text.splitlines() if "Caught SIGTERM during" in ln]
    assert ": stopping; training has finished (checkpoints/last.ckpt) but summary.json is not written; the " \
           "requeued job tests and evaluates it again, as does: python run.py " in line
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not (out / "report.json").exists() and not (out / "summary.json").exists()


def test_the_command_a_stopped_evaluation_logs_evaluates_the_run_again(stopped_evaluation):
    out, text, _, _ = stopped_evaluation
    (line,) = [ln for ln in text.splitlines() if "Caught SIGTERM during" in ln]
    command = shlex.split(line.split("as does: ")[1])
    assert command[:2] == ["python", "run.py"] and command[-1] == f"resume={out}"
    resumed = run_cli(*command[2:])
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"Resuming {out}" in resumed.stdout
    assert (out / "report.json").is_file() and (out / "summary.json").is_file()
