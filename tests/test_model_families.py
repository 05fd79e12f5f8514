"""Every model family trains end to end through run.py at tiny scale, and TopoLoss changes its topo layers."""

import csv
import json

import pytest

from cli import run_cli

COMMON = ["trainer.max_steps=2", "trainer.max_epochs=-1", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
          "trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null", "trainer.log_every_n_steps=1",
          "eval.after_train=false", "trainer.enable_progress_bar=false",
          "trainer.enable_model_summary=false"]
VISION = ["data.image_size=32", "data.batch_size=8"]
TEXT = ["data=text_embedded", "data.block_size=32", "data.batch_size=4"]
FAMILIES = {
    "resnet50": ["model=resnet50", "model.net.small_input=true", *VISION],
    "vit_b_32": ["model=vit_b_32", "model.net.image_size=32", "model.net.patch_size=8", "model.net.num_layers=2",
                 "model.net.num_heads=2", "model.net.hidden_dim=32", "model.net.mlp_dim=64", *VISION],
    "gpt_neo_125m": ["model=gpt_neo_125m", "model.net.num_layers=2", "model.net.num_heads=2",
                     "model.net.hidden_size=32", "optim.lr=1e-3", *TEXT],
    "nanogpt": ["model=nanogpt", "model.net.n_layer=2", "model.net.n_head=2", "model.net.n_embd=32",
                "optim.lr=1e-3", *TEXT],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_with_topoloss(family, tmp_path):
    proc = run_cli(*COMMON, *FAMILIES[family], "topo.weight=50", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["optimizer_steps"] == 2 and summary["topo"]["per_layer"]
    with open(tmp_path / "metrics.csv") as f:
        first = next(r for r in csv.DictReader(f) if r.get("topo/total"))
    assert first["step"] == "0"
    final = summary["topo"]["per_layer"]
    start = {layer: float(first[f"topo/{layer}"]) for layer in final}
    assert all(final[layer] != start[layer] for layer in final)
    assert sum(final.values()) < sum(start.values())  # two steps with τ=50 lowered the mean topo loss
