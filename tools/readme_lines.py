"""Run every `python run.py` line of the README, on tiny settings, in a scratch directory; print a markdown table of
each line's exit code and wall time.

    .venv/bin/python tools/readme_lines.py [--out DIR] [--only SUBSTRING]

Each README line runs as written plus the tiny overrides and stand-ins of its recipe (RECIPES): placeholders such as
`/data/imagenet`, `/path/to/floc` or an official checkpoint name become small real files made here; lines that name
a run, a sweep or a checkpoint get those of earlier lines. Lines that need a cluster run on the local Slurm of
tools/slurm_cluster.sh when `sinfo` answers (on its CPU partition), else they are reported as not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAIN = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
              "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false"]
TINY_VISION = ["data.image_size=8", "data.batch_size=16"]
TINY_EVAL = ["eval.pruning=[0.0,0.5]", "eval.downsampling=[1,2]", "eval.metric_batches=2", "eval.max_per_category=4"]
TINY_LANGUAGE_EVAL = ["eval.n_sentences=40", "eval.integration_distances=[0,1,2]", "eval.pruning=[0.0,0.5]",
                      "eval.downsampling=[1,2]", "eval.metric_batches=2"]
TINY_PEER = ["eval.image_size=32", "eval.max_per_category=4", "eval.batch_size=16", "eval.positions.orientation.max_units=200",
             "eval.positions.selectivity.num_samples=20", "eval.positions.windows.unit_number_limit=200"]
TINY_IMAGENET = ["hardware=cpu", "data.num_classes=2", "data.image_size=32", "data.eval_image_size=32",
                 "data.batch_size=4", "data.num_workers=0", "data.pin_memory=false"]


@dataclass
class Recipe:
    """How a README line runs here: text substitutions, overrides appended, and what it provides later lines."""

    pattern: str                                   # a regex the README line's arguments match
    extra: list[str] = field(default_factory=list)
    replace: dict[str, str] = field(default_factory=dict)  # README text -> stand-in ({name} from the fixtures)
    provides: str | None = None                    # "run" (its run dir) or "sweep" (its sweep dir)
    needs_slurm: bool = False


RECIPES = [
    Recipe(r"^$", TINY_TRAIN + TINY_VISION + TINY_EVAL),  # the quick start: the default run
    Recipe(r"^model=resnet18 topo\.weight=5$", TINY_TRAIN + TINY_VISION + TINY_EVAL, provides="run"),
    Recipe(r"^topo\.weight=0$", TINY_TRAIN + TINY_VISION + ["eval.after_train=false"]),
    Recipe(r"^-m topo\.weight=0,1,5$", TINY_TRAIN + TINY_VISION + ["eval.after_train=false"], provides="sweep"),
    Recipe(r"^-m hardware=slurm topo\.weight=0,1,5,10 hydra\.launcher\.partition=gpu$",
           TINY_TRAIN + TINY_VISION + ["eval.after_train=false", "hydra.launcher.timeout_min=10"],
           {"hardware=slurm ": "hardware=slurm_cpu ", "partition=gpu": "partition=debug"}, needs_slurm=True),
    Recipe(r"^logger=wandb$", TINY_TRAIN + TINY_VISION + ["eval.after_train=false"]),
    Recipe(r"^trainer\.max_epochs=1 trainer\.limit_train_batches=2 seed=1$",
           ["trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
            "eval.after_train=false"] + TINY_VISION),
    Recipe(r"^experiment=simclr_digits$", ["trainer.max_epochs=1", "trainer.limit_train_batches=2",
                                           "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                                           "eval.max_per_category=4", "eval.gratings=false"]),
    Recipe(r"^experiment=nanogpt_embedded$", ["trainer.max_steps=4", "trainer.val_check_interval=2",
                                             "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                                             "trainer.enable_progress_bar=false"] + TINY_LANGUAGE_EVAL),
    Recipe(r"^experiment=resnet18_imagenet data\.root=/data/imagenet -m$",
           TINY_TRAIN + TINY_IMAGENET + ["topo.weight=0,10", "eval.after_train=false"],
           {"/data/imagenet": "{imagenet}"}),
    Recipe(r"^task=eval ckpt_path=outputs/\.\.\./checkpoints/last\.ckpt$", TINY_VISION + TINY_EVAL,
           {"outputs/.../checkpoints/last.ckpt": "{run}/checkpoints/last.ckpt"}),
    Recipe(r"^resume=outputs/train/", ["model=resnet18", "topo.weight=5"] + TINY_TRAIN + TINY_VISION + TINY_EVAL,
           {"outputs/train/2026-12-01/10-11-12-123456": "{run}"}),  # with the overrides of the run it resumes
    Recipe(r"^task=report report\.sweep_dir=outputs/multirun/2026-12-01/10-11-12-123456( logger=wandb)?$", [],
           {"outputs/multirun/2026-12-01/10-11-12-123456": "{sweep}"}),
    Recipe(r"^task=prepare data=imagenet data\.root=/data/imagenet data\.prepared_dir=/fast/imagenet$",
           ["data.num_classes=2", "data.num_workers=0", "data.image_size=32", "data.prepared_max_side=48"],
           {"/data/imagenet": "{imagenet}", "/fast/imagenet": "{scratch}/prepared"}),
    Recipe(r"^-m experiment=compare_topo_digits$", TINY_TRAIN + TINY_VISION + ["topo.weight=0,5", "seed=0",
                                                                              "eval.after_train=false"]),
    Recipe(r"^-m experiment=compare_topo_nanogpt_embedded$",
           ["trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "topo.weight=0,3", "seed=0",
            "eval.after_train=false"]),
    Recipe(r"^-m experiment=compare_tdann_digits$", TINY_TRAIN + TINY_VISION + [
        "topo=tdann", "seed=0", "topo.tdann.neighbourhoods=500", "topo.tdann.swapopt.steps=1000",
        "eval.after_train=false"]),
    Recipe(r"^-m experiment=search_tau_digits$", TINY_TRAIN + TINY_VISION + TINY_EVAL + ["hydra.sweeper.n_trials=2"]),
    Recipe(r"^-m experiment=paper_trends_digits seed=0$", TINY_TRAIN + TINY_VISION + [
        "topo.weight=0,5", "eval.after_train=false"]),
    Recipe(r"^-m experiment=paper_trends_digits$", TINY_TRAIN + TINY_VISION + ["topo.weight=0,5", "seed=0",
                                                                              "eval.after_train=false"]),
    Recipe(r"^--help$"),
    Recipe(r"^topo\.weight=[05] 'eval\.label=\"TopoNets τ=[05]\"' ", TINY_TRAIN + TINY_VISION + TINY_EVAL),
    Recipe(r"^task=eval model=tdann_resnet ckpt_path=outputs/peers/tdann_(simclr|supervised)/", TINY_PEER,
           {"outputs/peers": "{peers}"}),
    Recipe(r"^task=eval model=nanogpt ckpt_path=outputs/peers/topolm/ckpt\.pt ", ["eval.n_sentences=40"],
           {"outputs/peers": "{peers}"}),
    Recipe(r"^task=report report\.eval_dirs=\[outputs/compare/", []),
    Recipe(r"^-m hardware=slurm model=resnet18 topo\.weight=0,1,5,10,50 hydra\.launcher\.partition=gpu "
           r"hydra\.launcher\.account=mylab",
           TINY_TRAIN + TINY_VISION + ["eval.after_train=false", "topo.weight=0,5"],
           {"hardware=slurm ": "hardware=slurm_cpu ", "partition=gpu": "partition=debug",
            " hydra.launcher.account=mylab hydra.launcher.qos=normal": "", "hydra.launcher.timeout_min=1440": "",
            "source /path/to/.venv/bin/activate": f"source {ROOT}/.venv/bin/activate"}, needs_slurm=True),
    Recipe(r"^task=eval model=resnet18 ckpt_path=all_topo_tau_10\.0\.pt eval\.stimuli=/path/to/floc$",
           ["eval.max_per_category=4"], {"all_topo_tau_10.0.pt": "{official_resnet18}", "/path/to/floc": "{floc}"}),
    Recipe(r"^task=eval model=resnet50 ckpt_path=all_topo_tau_30\.0\.pt eval\.stimuli=/path/to/floc$",
           ["eval.max_per_category=4"], {"all_topo_tau_30.0.pt": "{official_resnet50}", "/path/to/floc": "{floc}"}),
    Recipe(r"^task=eval model=vit_b_32 ckpt_path=tau_10\.0\.pt eval\.stimuli=/path/to/floc$",
           ["eval.max_per_category=4"], {"tau_10.0.pt": "{official_vit}", "/path/to/floc": "{floc}"}),
    Recipe(r"^task=eval model=nanogpt ckpt_path=tau_3\.0\.pt$", ["eval.n_sentences=40"],
           {"tau_3.0.pt": "{official_nanogpt}"}),
    Recipe(r"^task=eval model=nanogpt ckpt_path=tau_3\.0\.pt eval\.sentences=my_sentences\.txt "
           r"eval\.blimp=/path/to/blimp$", [],
           {"tau_3.0.pt": "{official_nanogpt}", "my_sentences.txt": "{sentences}", "/path/to/blimp": "{blimp}"}),
]


def usage_lines(readme: Path) -> list[str]:
    """The arguments of every `python run.py` command in the README's bash blocks (continuations joined, comments
    dropped), in order."""
    lines, block, pending = [], False, ""
    for raw in readme.read_text(encoding="utf-8").splitlines():
        if raw.startswith("```"):
            block = raw.strip() == "```bash"
            continue
        if not block:
            continue
        text = pending + raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else pending
        if text.endswith("\\"):
            pending = text[:-1].rstrip() + " "
            continue
        pending = ""
        match = re.search(r"(?:^|&& )(?:\.venv/bin/)?python3? run\.py(.*)$", text)
        if match:
            lines.append(match.group(1).strip())
    return lines


def recipe_of(args: str) -> Recipe:
    """The one recipe whose pattern the line matches (a ValueError when none or several do)."""
    found = [r for r in RECIPES if re.search(r.pattern, args)]
    if len(found) != 1:
        raise ValueError(f"README line {args!r} matches {len(found)} recipes in tools/readme_lines.py")
    return found[0]


def _images(root: Path, classes: list[str], n: int) -> None:
    """`n` random 48x40 RGB PNGs in a folder per class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def _floc(scratch: Path) -> Path:
    _images(scratch / "floc", ["faces", "places"], 4)
    return scratch / "floc"


def _imagenet(scratch: Path) -> Path:
    for split in ("train", "val"):
        _images(scratch / "imagenet" / split, ["n01440764", "n01443537"], 8)
    return scratch / "imagenet"


def _sentences(scratch: Path) -> Path:
    path = scratch / "sentences.txt"
    path.write_text("".join(f"The {w} of the old house was painted a colour nobody in the village had seen before "
                            "that year.\n" for w in ("door", "roof", "gate", "wall", "porch", "fence", "window")))
    return path


def _blimp(scratch: Path) -> Path:
    (scratch / "blimp").mkdir(exist_ok=True)
    (scratch / "blimp" / "agreement.jsonl").write_text("".join(json.dumps(
        {"sentence_good": f"The {n} is here.", "sentence_bad": f"The {n} are here.", "UID": "agreement"}) + "\n"
        for n in ("cat", "dog", "house", "tree")))
    return scratch / "blimp"


def _official(scratch: Path, name: str) -> Path:
    """A stand-in in the layout of an official TopoNets file (random weights; small where the loader reads the
    architecture from the file)."""
    import torch
    from torchvision.models import resnet50
    from torchvision.models.vision_transformer import VisionTransformer

    from toponets_exp.models import gpt, resnet18

    torch.manual_seed(0)
    path = scratch / name
    if name == "all_topo_tau_10.0.pt":
        torch.save(resnet18(num_classes=1000, blurpool=True).state_dict(), path)
    elif name == "all_topo_tau_30.0.pt":
        torch.save(resnet50(num_classes=1000).state_dict(), path)
    elif name == "tau_10.0.pt":
        vit = VisionTransformer(image_size=224, patch_size=32, num_layers=2, num_heads=12, hidden_dim=96,
                                mlp_dim=192, num_classes=1000)
        torch.save({"model": vit.state_dict(), "epoch": 299}, path)
    else:
        net = gpt(vocab_size=50304, block_size=1024, n_layer=2, n_head=4, n_embd=64)
        torch.save({"model": {f"_orig_mod.{k}": v for k, v in net.state_dict().items()},
                    "model_args": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 1024, "bias": False,
                                   "vocab_size": 50304, "dropout": 0.0}}, path)
    return path


def _peers(scratch: Path) -> Path:
    """The stand-ins of `python tools/peer_files.py outputs/peers --size 64`, at the tiny lines' 32 px."""
    return Path(subprocess.run([sys.executable, str(ROOT / "tools" / "peer_files.py"), str(scratch / "peers"),
                                "--size", "32"], check=True, capture_output=True).args[2])


FIXTURES = {"floc": _floc, "imagenet": _imagenet, "sentences": _sentences, "blimp": _blimp,
            "scratch": lambda scratch: scratch,
            "official_resnet18": lambda scratch: _official(scratch, "all_topo_tau_10.0.pt"),
            "official_resnet50": lambda scratch: _official(scratch, "all_topo_tau_30.0.pt"),
            "official_vit": lambda scratch: _official(scratch, "tau_10.0.pt"),
            "official_nanogpt": lambda scratch: _official(scratch, "nanogpt_tau_3.0.pt"),
            "peers": _peers}


def placeholders(recipe: Recipe) -> set[str]:
    """The {names} the recipe's substitutions use: fixtures, or what an earlier line provides."""
    return {name for value in recipe.replace.values() for name in re.findall(r"\{(\w+)\}", value)}


def stand_ins(recipe: Recipe, names: dict[str, str], scratch: Path) -> dict[str, str]:
    """`names` with the fixtures the recipe's substitutions name made (once each)."""
    for name in placeholders(recipe) & set(FIXTURES) - set(names):
        names[name] = str(FIXTURES[name](scratch))
    return names


def command(args: str) -> str:
    """The README line as a user types it."""
    return f"python run.py {args}".strip()


def not_run(args: str, why: str) -> dict[str, object]:
    """The result of a line that could not run here, and why."""
    return {"line": command(args), "ran": "", "exit": None, "wall_s": None, "last": f"not run: {why}"}


def split_args(args: str) -> list[str]:
    """Shell-like split that keeps a quoted override (e.g. 'hydra.launcher.setup=[...]') whole."""
    import shlex

    return shlex.split(args)


def run_line(args: str, recipe: Recipe, names: dict[str, str], scratch: Path, num: int) -> dict[str, object]:
    """Run one line; its exit code, wall time, the command as run, and the run or sweep directory it used."""
    text = args
    names = stand_ins(recipe, names, scratch)
    for old, new in recipe.replace.items():
        text = text.replace(old, new.format(**names))
    for readme_dir, dir_here in names.items():  # an output directory an earlier line named (hydra.run.dir=...)
        if readme_dir.startswith("outputs/"):
            text = text.replace(readme_dir, dir_here)
    multirun = re.search(r"(^| )-m( |$)", text) is not None
    where = scratch / f"line{num:02d}"
    place = f"hydra.sweep.dir={where}" if multirun else f"hydra.run.dir={where}"
    named = re.search(r"(?:^| )hydra\.run\.dir=(\S+)", text)
    if named:  # the line's own output directory becomes this line's scratch directory, for later lines to read
        names[named.group(1)] = str(where)
        text = text.replace(named.group(0), "")
    argv = split_args(text) + recipe.extra + ([] if "resume=" in text or args == "--help" else [place])
    if "-m" in argv:  # a trailing -m (as a README line may end) would split the overrides appended after it
        argv.remove("-m")
        argv.insert(0, "-m")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    env.pop("WANDB_API_KEY", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "run.py", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=1800)
    wall = time.perf_counter() - start
    (scratch / f"line{num:02d}.log").write_text(proc.stdout)
    last = next((line for line in reversed(proc.stdout.splitlines()) if line.strip()), "")
    return {"line": command(args), "ran": " ".join(argv), "exit": proc.returncode,
            "wall_s": round(wall, 1), "dir": str(where), "last": last[-160:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--only", default=None, help="run only the lines containing this text")
    opts = parser.parse_args()
    scratch = opts.out or Path(tempfile.mkdtemp(prefix="readme-lines-"))
    scratch.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    slurm = shutil.which("sinfo") is not None and subprocess.run(["sinfo"], capture_output=True).returncode == 0
    results = []
    for num, args in enumerate(usage_lines(ROOT / "README.md")):
        if opts.only is not None and opts.only not in args:
            continue
        recipe = recipe_of(args)
        missing = placeholders(recipe) - set(FIXTURES) - set(names)
        if recipe.needs_slurm and not slurm:
            results.append(not_run(args, "no Slurm cluster answers (tools/slurm_cluster.sh start)"))
            continue
        if missing:
            results.append(not_run(args, f"needs the {', '.join(sorted(missing))} of an earlier line"))
            continue
        result = run_line(args, recipe, names, scratch, num)
        if recipe.provides:
            names[recipe.provides] = result["dir"]
        results.append(result)
        print(f"exit {result['exit']} in {result['wall_s']} s: {result['line']}", file=sys.stderr, flush=True)
    (scratch / "results.json").write_text(json.dumps(results, indent=1))
    print("| README line | exit | wall s |\n|---|---|---|")
    for r in results:
        print(f"| `{r['line']}` | {r['exit'] if r['exit'] is not None else 'not run'} | {r['wall_s'] or ''} |")
    return 0 if all(r["exit"] in (0, None) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
