"""Training-step time of each topographic loss against τ = 0, on a config of run.py (the embedded default).

Run: python benchmarks/loss_step_time.py [--experiment NAME] [--losses topoloss,spatial_correlation,wiring]
                                         [--tau 5] [--steps 30] [--warmup 5] [--quick]
Builds the run's objects as run.py does (`topo=<loss> topo.weight=<tau>`, and `topo=off` for the baseline), trains
warm-up + timed steps of each on this machine's device, and times every training step (batch start to end) and the
topo hook inside it. Prints a markdown table, then one line: the baseline's median step and each loss's ratio to it.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_throughput import StepTimer  # noqa: E402
from toponets_exp.build import (build_datamodule, build_module, build_topo, seed_and_check,  # noqa: E402
                                select_topo_layers)

log = logging.getLogger("loss_step_time")
ROOT = Path(__file__).resolve().parents[1]


def median_step(overrides: list[str], device: str, warmup: int, steps: int) -> tuple[float, float]:
    """(median step, median topo hook) in ms of warm-up + timed training steps of one configuration."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    seed_and_check(cfg)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    topo = build_topo(cfg, select_topo_layers(cfg, module.net))
    timer = StepTimer(device, warmup, topo)
    trainer = L.Trainer(accelerator=device, devices=1, max_steps=warmup + steps, max_epochs=-1, limit_val_batches=0,
                        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[topo, timer])
    trainer.fit(module, datamodule=datamodule)
    hook = statistics.median(timer.hooks) if timer.hooks else 0.0
    return statistics.median(timer.steps[warmup:]) * 1e3, hook * 1e3


def main() -> None:
    """Time the baseline and every loss, print the table and the result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=None, help="a conf/experiment recipe (default: the default run)")
    parser.add_argument("--losses", default="topoloss,spatial_correlation,wiring", help="topo choices to time")
    parser.add_argument("--tau", default="5", help="topo.weight of every loss")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="2 timed steps after 1: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 2, 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lightning").setLevel(logging.WARNING)
    base = [f"experiment={args.experiment}"] if args.experiment else []
    base.append(f"hardware={'gpu' if args.device == 'cuda' else 'cpu'}")
    losses = args.losses.split(",")
    results = {"off": median_step([*base, f"topo={losses[0]}", "topo.weight=0"], args.device, args.warmup,
                                  args.steps)}
    for loss in losses:
        results[loss] = median_step([*base, f"topo={loss}", f"topo.weight={args.tau}"], args.device, args.warmup,
                                    args.steps)
        log.info("%s: step %.1f ms, topo hook %.2f ms", loss, *results[loss])
    off = results["off"][0]
    print(f"{args.experiment or 'the default run'}, {args.device}, τ = {args.tau}; medians of {args.steps} steps "
          f"after {args.warmup}\n")
    print("| loss | step ms | weight-loss hook ms | step vs τ = 0 |\n|---|---|---|---|")
    for loss, (step, hook) in results.items():
        print(f"| {loss if loss != 'off' else 'none (τ = 0)'} | {step:.1f} | {hook:.2f} | {step / off:.2f}x |")
    print(" ".join([f"step_ms_tau0={off:.2f}"] + [f"step_ratio_{loss}={results[loss][0] / off:.3f}"
                                                   for loss in losses]))


if __name__ == "__main__":
    main()
