"""TopoLoss speed: reference vs ours vs the official `topoloss` package, and the callback's training-step overhead.

Run: python benchmarks/topoloss_bench.py [--device cpu|cuda] [--dtype float32|bfloat16] [--repeats N] [--quick]
Prints a markdown table, then one line of ratios measured in this run (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import Timing  # noqa: E402
from toponets_exp.topo import TopoLayer, TopoLoss, TopoLossCallback, select_layers, unit_matrix  # noqa: E402

log = logging.getLogger("topoloss_bench")
FACTOR = 3.0
VALUE_TOL = 1e-6


def sync(device: torch.device) -> None:
    """Wait for queued device work so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> Timing:
    """Time `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        samples.append(time.perf_counter() - start)
    return Timing(samples)


def reference_layer_loss(layer: TopoLayer) -> torch.Tensor:
    """The definition, straight: interpolate down by scale factor, up to (H, W), 1 - mean cosine (float32)."""
    units = unit_matrix(layer.param, layer.unit_dim).float()
    h, w = layer.sheet
    sheet = units.reshape(h, w, -1).permute(2, 0, 1).unsqueeze(0)
    down = F.interpolate(sheet, scale_factor=(1.0 / layer.factor_h, 1.0 / layer.factor_w), mode="bilinear")
    blurred = F.interpolate(down, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).reshape(units.shape[0], -1)
    return 1.0 - F.cosine_similarity(units, blurred, dim=-1).mean()


def reference_total(layers: list[TopoLayer]) -> torch.Tensor:
    """Mean over layers of τ_l · reference loss_l."""
    return torch.stack([layer.weight * reference_layer_loss(layer) for layer in layers]).mean()


def official_total(net: nn.Module, layers: list[TopoLayer]) -> Callable[[], torch.Tensor]:
    """The official package's mean over layers of scale_l · loss_l, on the same layers and factors."""
    import topoloss

    losses = [topoloss.LaplacianPyramid(layer_name=l.name, factor_h=l.factor_h, factor_w=l.factor_w, scale=l.weight)
              for l in layers]
    official = topoloss.TopoLoss(losses=losses)
    return lambda: official.compute(model=net, reduce_mean=True)


def fwd_bwd(total_fn: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable[[], torch.Tensor]:
    """Forward + backward of a total TopoLoss (gradients w.r.t. the sheet weights), returning the value."""
    def run() -> torch.Tensor:
        total = total_fn()
        torch.autograd.grad(total, params)
        return total.detach()
    return run


def resnet18_layers(device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, list[TopoLayer]]:
    """torchvision ResNet-18 with every conv of every residual block selected (φ=3)."""
    from torchvision.models import resnet18

    net = resnet18(weights=None).to(device, dtype)
    return net, select_layers(net, ["layer*.*.conv*"], FACTOR, 1.0)


def gpt2_fc_layers(device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, list[TopoLayer]]:
    """GPT-2-small MLP shapes: 12 Linear c_fc layers 768 -> 3072 (φ=3)."""
    blocks = nn.ModuleList(nn.ModuleDict({"mlp": nn.ModuleDict({"c_fc": nn.Linear(768, 3072)})}) for _ in range(12))
    net = nn.ModuleDict({"h": blocks}).to(device, dtype)
    return net, select_layers(net, ["h.*.mlp.c_fc"], FACTOR, 1.0)


def compare_losses(name: str, net: nn.Module, layers: list[TopoLayer], args: argparse.Namespace,
                   device: torch.device) -> dict[str, object]:
    """Check the three implementations agree, then time each one's forward + backward."""
    params = [l.param for l in layers]
    ours = TopoLoss(layers, "mean")
    impls = {
        "reference (interpolate, autograd)": lambda: reference_total(layers),
        "ours (toponets_exp.topo.TopoLoss)": lambda: ours.total(ours.layer_losses(dtype=torch.float32)),
    }
    try:
        impls["official topoloss 0.0.2"] = official_total(net, layers)
    except ImportError:
        log.warning("the official package is not installed (pip install topoloss==0.0.2 einops torchtyping)")
    values = {k: float(fn().detach()) for k, fn in impls.items()}
    ref = values["reference (interpolate, autograd)"]
    tol = VALUE_TOL if args.dtype == "float32" else 3e-2  # the official package computes in bf16 (8-bit mantissa)
    for k, v in values.items():
        if abs(v - ref) > tol:
            raise AssertionError(f"{name}: {k} gives {v!r}, the reference {ref!r} (tolerance {tol:g})")
    timings = {k: time_calls(fwd_bwd(fn, params), device, args.repeats, args.warmup) for k, fn in impls.items()}
    n_weights = sum(p.numel() for p in params)
    return {"name": name, "layers": len(layers), "weights": n_weights, "values": values, "timings": timings}


class _Recorder:
    """A logger stand-in that keeps the metrics the callback writes (the default logging path, minus file I/O)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Keep one row of metrics."""
        self.rows.append(metrics)


VARIANTS = {"τ=0": (0.0, False), "τ=5": (5.0, False), "τ=5 overlap": (5.0, True)}  # (τ, topo.overlap)


def training_overhead(name: str, build: Callable[[], nn.Module], batch: Callable[[], tuple[torch.Tensor, ...]],
                      step_loss: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor], pattern: str,
                      args: argparse.Namespace, device: torch.device) -> dict[str, object]:
    """Step times with τ=0, τ=5 and τ=5 with topo.overlap through the real TopoLossCallback hooks, and the floor.

    Each step is what Lightning's automatic optimisation runs: on_train_batch_start (where overlap launches the
    concurrent topo gradient), forward, loss, backward, on_before_optimizer_step, optimizer step, zero_grad. The
    Trainer's own bookkeeping is left out so it does not dilute the ratio. The variants (same init, same batch) take
    turns step by step, so load drifts hit them alike. The floor is the hook's unavoidable memory traffic — read
    every topo weight, read-modify-write its gradient: one `torch._foreach_add_(grads, weights)` — timed after
    every τ=5 step on the same weights.
    """
    runs = {}
    for key, (tau, overlap) in VARIANTS.items():
        torch.manual_seed(0)
        net = build().to(device)
        callback = TopoLossCallback(select_layers(net, [pattern], FACTOR, tau), overlap=overlap)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        trainer = SimpleNamespace(global_step=0, log_every_n_steps=10, loggers=[_Recorder()],
                                  precision_plugin=SimpleNamespace())  # fp32: no scaler
        runs[key] = (net, callback, opt, trainer, SimpleNamespace(device=device))
    data = batch()
    weights = [layer.param.detach() for layer in runs["τ=5"][1].loss.layers]
    floor_grads = [torch.zeros_like(w) for w in weights]
    times: dict[str, list[float]] = {key: [] for key in VARIANTS}
    hook_times: dict[str, list[float]] = {key: [] for key in VARIANTS}
    floor_times: list[float] = []

    def step(key: str) -> None:
        net, callback, opt, trainer, module = runs[key]
        sync(device)
        start = time.perf_counter()
        callback.on_train_batch_start(trainer, module, data, 0)
        step_loss(net, data).backward()
        sync(device)
        hook_start = time.perf_counter()
        callback.on_before_optimizer_step(trainer, module, opt)
        sync(device)
        hook_times[key].append(time.perf_counter() - hook_start)
        opt.step()
        opt.zero_grad(set_to_none=True)
        trainer.global_step += 1
        sync(device)
        times[key].append(time.perf_counter() - start)

    def floor() -> None:
        sync(device)
        start = time.perf_counter()
        torch._foreach_add_(floor_grads, weights)
        sync(device)
        floor_times.append(time.perf_counter() - start)

    for _ in range(args.warmup + args.steps):
        for key in VARIANTS:
            step(key)
        floor()
    for _, callback, *_ in runs.values():
        callback.close()
    off = times["τ=0"][args.warmup:]
    out = {"name": name, "layers": len(runs["τ=5"][1].loss.layers), "off": Timing(off),
           "weights": sum(w.numel() for w in weights), "floor": Timing(floor_times[args.warmup:])}
    for key in VARIANTS:
        if key == "τ=0":
            continue
        on, hook = times[key][args.warmup:], hook_times[key][args.warmup:]
        out[key] = {"step": Timing(on), "hook": Timing(hook),
                    "overhead_pct": (statistics.median(b / a for a, b in zip(off, on)) - 1.0) * 100.0,
                    "hook_pct": statistics.median(hook) / statistics.median(off) * 100.0,
                    "hook_over_floor": statistics.median(hook) / out["floor"].median}
    return out


def resnet_overhead(args: argparse.Namespace, device: torch.device) -> dict[str, object]:
    """ResNet-18 (torchvision, 1000 classes) training step on a 32x3x64x64 batch."""
    from torchvision.models import resnet18

    def batch() -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(args.batch, 3, 64, 64, generator=g)
        return x.to(device), torch.randint(0, 1000, (args.batch,), generator=g).to(device)

    def loss(net: nn.Module, data: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            return F.cross_entropy(net(data[0]), data[1])

    return training_overhead("ResNet-18", lambda: resnet18(weights=None), batch, loss, "layer*.*.conv*", args, device)


def gpt_overhead(args: argparse.Namespace, device: torch.device) -> dict[str, object]:
    """A GPT-2-style LM at reduced size (4 layers, 256 wide, 8192 vocab), batch 8 x 128 tokens, c_fc topo."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=4, n_embd=256, n_head=4, n_positions=128, vocab_size=8192)

    def batch() -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(1)
        return (torch.randint(0, config.vocab_size, (args.batch // 4, 128), generator=g).to(device),)

    def loss(net: nn.Module, data: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            return net(input_ids=data[0], labels=data[0]).loss

    return training_overhead("GPT-2-style (4x256)", lambda: GPT2LMHeadModel(config), batch, loss,
                             "transformer.h.*.mlp.c_fc", args, device)


def table(cases: list[dict[str, object]], overheads: list[dict[str, object]], args: argparse.Namespace) -> str:
    """The markdown tables of this run."""
    lines = [f"TopoLoss forward + backward, {args.device} ({args.threads} thread(s)), {args.dtype} weights, "
             f"{args.repeats} repeats, "
             "ms: median (IQR, min)", "",
             "| case | implementation | value | time ms | speed-up vs this row |", "|---|---|---|---|---|"]
    for case in cases:
        ours = case["timings"]["ours (toponets_exp.topo.TopoLoss)"].median
        for impl, timing in case["timings"].items():
            lines.append(f"| {case['name']} ({case['layers']} layers, {case['weights'] / 1e6:.1f}M weights) | {impl} "
                         f"| {case['values'][impl]:.8f} | {timing.describe()} | {timing.median / ours:.2f}x |")
    lines += ["", f"Training step with TopoLossCallback (log every 10 steps), {args.steps} interleaved steps per variant, "
              "ms: median (IQR, min); overhead = median over step pairs of (τ>0 step / τ=0 step) - 1; floor = one "
              "foreach add of the topo weights into gradients of their size", "",
              "| model | topo layers (weights) | hook | step τ=0 | step τ=5 | hook alone | overhead | hook / step | "
              "floor | hook / floor |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for o in overheads:
        for key in VARIANTS:
            if key == "τ=0":
                continue
            r = o[key]
            lines.append(f"| {o['name']} | {o['layers']} ({o['weights'] / 1e6:.1f}M) | {key.replace('τ=5', '').strip() or 'sync'} "
                         f"| {o['off'].describe()} | {r['step'].describe()} | {r['hook'].describe()} | "
                         f"{r['overhead_pct']:+.1f} % | {r['hook_pct']:.1f} % | {o['floor'].describe()} | "
                         f"{r['hook_over_floor']:.1f} |")
    return "\n".join(lines)


def speedup(case: dict[str, object]) -> float:
    """Official time / our time (nan when the official package is absent)."""
    timings = case["timings"]
    if "official topoloss 0.0.2" not in timings:
        return float("nan")
    return timings["official topoloss 0.0.2"].median / timings["ours (toponets_exp.topo.TopoLoss)"].median


def main() -> None:
    """Parse options, run every measurement in this process, print the table and the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weight dtype for the loss comparison (bf16 weights, float32 topo maths); "
                             "bfloat16 also turns on bf16 autocast in the training steps")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per loss implementation")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per τ")
    parser.add_argument("--batch", type=int, default=32, help="images per ResNet step (GPT: batch/4 sequences)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared machine, a descheduled OpenMP thread stalls every "
                             "parallel op and swings timings by 10x)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 3 steps, 1 warm-up: a smoke run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.warmup = 2
    if args.quick:
        args.repeats, args.steps, args.warmup = 3, 3, 1
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    cases = [compare_losses("ResNet-18 block convs", *resnet18_layers(device, dtype), args, device),
             compare_losses("GPT-2-small c_fc", *gpt2_fc_layers(device, dtype), args, device)]
    overheads = [resnet_overhead(args, device), gpt_overhead(args, device)]
    print(table(cases, overheads, args))
    print()
    resnet, gpt = overheads
    print(f"speedup_vs_official_resnet18={speedup(cases[0]):.2f} speedup_vs_official_gpt={speedup(cases[1]):.2f} "
          f"callback_overhead_resnet18_pct={resnet['τ=5']['overhead_pct']:.2f} "
          f"callback_overhead_gpt_pct={gpt['τ=5']['overhead_pct']:.2f} "
          f"hook_over_floor_resnet18={resnet['τ=5']['hook_over_floor']:.2f} "
          f"hook_over_floor_gpt={gpt['τ=5']['hook_over_floor']:.2f} "
          f"overlap_overhead_resnet18_pct={resnet['τ=5 overlap']['overhead_pct']:.2f} "
          f"overlap_overhead_gpt_pct={gpt['τ=5 overlap']['overhead_pct']:.2f} "
          f"overlap_hook_over_floor_resnet18={resnet['τ=5 overlap']['hook_over_floor']:.2f} "
          f"overlap_hook_over_floor_gpt={gpt['τ=5 overlap']['hook_over_floor']:.2f}")

if __name__ == "__main__":
    main()
