"""Run `run.py` in a subprocess, as a user would (a child of a warm interpreter where that is the same)."""

from __future__ import annotations

import atexit
import csv
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1", "data.image_size=8", "data.batch_size=16",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "eval.after_train=false"]
FAST_EVAL = ["eval.pruning=[0.0,0.5]", "eval.downsampling=[1,2]", "eval.metric_batches=2"]
# Three epochs of six batches, every step logged: long enough to interrupt inside an epoch and at its end.
RESUMABLE = ["trainer.max_epochs=3", "trainer.limit_train_batches=6", "trainer.limit_val_batches=2",
             "trainer.limit_test_batches=2", "trainer.log_every_n_steps=1",
             "data.image_size=8", "data.batch_size=16", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false", "eval.after_train=false"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: W&B offline and quiet, unbuffered output, plus `extra`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline",
           "WANDB_SILENT": "true", **extra}
    env.pop("WANDB_API_KEY", None)
    return env


class WarmInterpreter:
    """tests/cli_server.py: a process that has imported what run.py imports, once, and forks a child per run that goes
    on as `python SCRIPT ARGS` would from there (see that file). A test's run then costs what the run does, not the
    seconds of interpreter start-up and imports (torch, Lightning, Hydra) that each new interpreter spends first.

    It serves runs whose environment is the one it started with (a variable read at import, such as
    OMP_NUM_THREADS, keeps the server's value); another environment, or `fresh=True`, gets a new interpreter."""

    def __init__(self) -> None:
        self.env = cli_env()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_server.py")], cwd=ROOT, env=self.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.logs = Path(tempfile.mkdtemp(prefix="toponets-cli-"))
        self.runs = 0
        if self._answer(300.0) != {"ready": True}:
            raise RuntimeError("tests/cli_server.py did not start")

    def _answer(self, timeout: float) -> dict | None:
        """The server's next line, or None after `timeout` seconds."""
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"tests/cli_server.py ended (exit {self.proc.wait()})")
        return json.loads(line)

    def serves(self, env: dict[str, str]) -> bool:
        """Whether a run with `env` may be a child: the server's environment but for pytest's note of the test."""
        return self.proc.poll() is None and _settled(env) == _settled(self.env)

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], merged: bool,
            timeout: float) -> subprocess.CompletedProcess:
        """`python ARGV` in `cwd` as a child; stdout and stderr into .stdout (`merged`) or each its own."""
        self.runs += 1
        out, err = self.logs / f"{self.runs}.out", self.logs / f"{self.runs}.err"
        request = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(out if merged else err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        (pid,) = self._answer(60.0).values()
        answer = self._answer(timeout)
        if answer is None:
            os.kill(pid, signal.SIGKILL)
            self._answer(60.0)
            raise subprocess.TimeoutExpired([sys.executable, *argv], timeout, out.read_text())
        texts = [path.read_text() if path.exists() else "" for path in (out, err)]
        out.unlink(missing_ok=True), err.unlink(missing_ok=True)
        return subprocess.CompletedProcess([sys.executable, *argv], answer["rc"], texts[0], None if merged else texts[1])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.logs, ignore_errors=True)


def _settled(env: dict[str, str]) -> dict[str, str]:
    """`env` without PYTEST_CURRENT_TEST, which pytest sets anew for every test and no import reads."""
    return {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"}


_warm: list[WarmInterpreter] = []


def run_python(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 600,
               merged: bool = True, fresh: bool = False) -> subprocess.CompletedProcess:
    """`python ARGV` in `cwd` with `env` (default cli_env()), as a child of the warm interpreter where it serves that
    environment, else (or `fresh`) as a new interpreter; stdout and stderr merged into .stdout unless not `merged`."""
    env = env or cli_env()
    if not fresh:
        if not _warm or _warm[0].proc.poll() is not None:
            _warm[:] = [WarmInterpreter()]
            atexit.register(_warm[0].close)
        if _warm[0].serves(env):
            return _warm[0].run(list(argv), cwd, env, merged, timeout)
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True, timeout=timeout)


def run_cli(*args: str, timeout: int = 600, env: dict[str, str] | None = None,
            fresh: bool = False) -> subprocess.CompletedProcess:
    """`python run.py ARGS` from the repo root; stdout and stderr merged into .stdout (see run_python)."""
    return run_python("run.py", *args, env=env, timeout=timeout, fresh=fresh)


def start_cli(*args: str, env: dict[str, str] | None = None, log: Path | None = None,
              ignored: tuple[signal.Signals, ...] = ()) -> subprocess.Popen:
    """`python run.py ARGS` started in the background, its output into `log` (or discarded); it starts with the
    signals in `ignored` ignored, as under a job runner whose handler only logs them (submitit's SIGTERM)."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child holds it

    def ignore() -> None:
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)

    return subprocess.Popen([sys.executable, "run.py", *args], cwd=ROOT, env=env or cli_env(), stdout=out,
                            stderr=subprocess.STDOUT, preexec_fn=ignore if ignored else None)


def wait_for_writes(path: Path, count: int, proc: subprocess.Popen | None = None, timeout: float = 300.0) -> None:
    """Block until `path` has been (re)written `count` times (each write renames a new file over it)."""
    seen: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise AssertionError(f"{path} was written {len(seen)} times, expected {count}")
        try:
            stat = path.stat()
            seen.add((stat.st_ino, stat.st_mtime_ns))
        except FileNotFoundError:
            pass
        time.sleep(0.001)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def net_params(ckpt: Path) -> dict[str, torch.Tensor]:
    """The backbone parameters and buffers of one of our Lightning checkpoints."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


def checkpoint_step(ckpt: Path) -> int:
    """The optimizer step a Lightning checkpoint was taken at."""
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
