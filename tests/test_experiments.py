"""Paper recipes: every conf/experiment composes and resolves; the embedded NanoGPT recipe runs from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {  # name -> (model builder, data module, paper τ sweep)
    "resnet18_imagenet": ("toponets_exp.models.resnet18", "ImageNetDataModule", [0, 0.5, 1, 5, 10, 20, 50]),
    "resnet50_imagenet": ("toponets_exp.models.resnet50", "ImageNetDataModule", [0, 1, 30]),
    "vit_b32_imagenet": ("toponets_exp.models.vit_b_32", "ImageNetDataModule", [0, 10]),
    "gpt_neo_125m_wikipedia": ("toponets_exp.models.gpt_neo.gpt_neo_125m", "HFTextDataModule", [0, 1, 5, 10, 50]),
    "nanogpt_fineweb_edu": ("toponets_exp.models.gpt", "HFTextDataModule", [0, 0.5, 1, 3, 50]),
    "nanogpt_embedded": ("toponets_exp.models.gpt", "EmbeddedTextDataModule", [0, 0.5, 1, 3, 50]),
    "paper_trends_digits": ("toponets_exp.models.resnet18", "DigitsDataModule", [0, 0.5, 1, 5, 10, 20, 50]),
    "compare_topo_digits": ("toponets_exp.models.resnet18", "DigitsDataModule", [0, 5, 50]),
    "compare_topo_resnet18_imagenet": ("toponets_exp.models.resnet18", "ImageNetDataModule", [0, 5, 50]),
    "compare_topo_nanogpt_embedded": ("toponets_exp.models.gpt", "EmbeddedTextDataModule", [0, 3, 30]),
}
OTHER_RECIPES = {"simclr_digits",  # recipes without a τ sweep, each tested with its objective (tests/test_simclr.py,
                 "tdann_simclr_digits", "tdann_simclr_resnet18_imagenet", "compare_tdann_digits",  # test_tdann_run.py
                 "search_tau_digits"}  # tests/test_search.py
COMPARED = {"compare_topo_digits": "topoloss,spatial_correlation,wiring",  # the losses a compare_topo_* sweeps
            "compare_topo_resnet18_imagenet": "topoloss,spatial_correlation,wiring",
            "compare_topo_nanogpt_embedded": "topoloss,topolm"}


def composed(name: str, *overrides: str) -> DictConfig:
    """The full config of `experiment=name`, with Hydra's runtime set so `${hydra:...}` resolves."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_every_recipe_file_is_listed() -> None:
    assert {p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")} == set(RECIPES) | OTHER_RECIPES


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_composes_and_resolves(name: str) -> None:
    builder, datamodule, sweep = RECIPES[name]
    cfg = composed(name, "hydra.runtime.output_dir=/tmp/out")
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    plain = OmegaConf.to_container(job, resolve=True)  # every interpolation of the job's config resolves
    assert plain["paths"]["output_dir"] == "/tmp/out"
    assert plain["model"]["net"]["_target_"] == builder
    assert plain["data"]["_target_"] == f"toponets_exp.data.{datamodule}"
    assert plain["topo"]["weight"] in sweep
    swept = [float(v) for v in str(cfg.hydra.sweeper.params["topo.weight"]).split(",")]
    assert swept == sweep
    if name.startswith("compare_topo_"):
        assert str(cfg.hydra.sweeper.params["topo"]) == COMPARED[name]
    if datamodule == "DigitsDataModule":  # the embedded default's τ × seed sweep, everything else the default run
        seeds = "0,1" if name.startswith("compare_topo_") else "0,1,2"
        assert str(cfg.hydra.sweeper.params["seed"]) == seeds
        assert plain["model"]["net"]["num_classes"] == plain["data"]["num_classes"] == 10
        assert plain["trainer"]["max_epochs"] == 8 and plain["optim"]["_target_"] == "torch.optim.AdamW"
    elif datamodule != "ImageNetDataModule":  # language: the net is sized by the data
        assert str(cfg.hydra.sweeper.params.get("seed", "0,1")) == "0,1"
        assert plain["model"]["lit"]["_target_"] == "toponets_exp.lit.CausalLM"
        assert plain["optim"]["_target_"] == "torch.optim.AdamW" and plain["model"]["lit"]["no_decay_1d"] is True
        assert plain["model"]["net"]["vocab_size"] == plain["data"]["vocab_size"]
        assert plain["topo"]["layers"] == ["transformer.h.*.mlp.c_fc"]
    else:
        assert plain["trainer"]["max_epochs"] == 88
        assert plain["model"]["net"]["num_classes"] == plain["data"]["num_classes"] == 1000


@pytest.mark.parametrize("name", ["gpt_neo_125m_wikipedia", "nanogpt_fineweb_edu"])
def test_language_recipes_tokenize_with_gpt2_offline(name: str) -> None:
    cfg = composed(name, "hydra.runtime.output_dir=/tmp/out")
    datamodule = instantiate(cfg.data, _convert_="all")  # the bundled GPT-2 BPE: no download, no path to give
    assert datamodule.tokenizer.vocab_size == 50257 and datamodule.tokenizer.eos_id == 50256
    assert cfg.model.net.vocab_size >= 50257


def test_paper_sizes_of_the_language_recipes() -> None:
    neo = composed("gpt_neo_125m_wikipedia", "hydra.runtime.output_dir=/tmp/out")
    assert neo.data.block_size == 2048 <= neo.model.net.max_position_embeddings
    nano = composed("nanogpt_fineweb_edu", "hydra.runtime.output_dir=/tmp/out")
    tokens_per_step = nano.data.batch_size * nano.data.block_size * 8 * nano.trainer.accumulate_grad_batches
    assert tokens_per_step == 524_288
    assert nano.trainer.max_steps * tokens_per_step == pytest.approx(10e9, rel=1e-3)


@pytest.mark.slow  # a subprocess run: ~20 s of CPU
def test_nanogpt_embedded_trains_from_the_cli(tmp_path: Path) -> None:
    proc = run_cli("experiment=nanogpt_embedded", "trainer.max_steps=4", "trainer.val_check_interval=2",
                   "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "data.block_size=32",
                   "data.batch_size=8", "model.net.n_layer=2", "trainer.enable_progress_bar=false",
                   "trainer.enable_model_summary=false", "eval.after_train=false", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["test"]) == {"loss", "ppl"}
    assert summary["test"]["ppl"] == pytest.approx(2.718281828 ** summary["test"]["loss"], rel=1e-3)
    assert summary["test"]["loss"] < 5.55  # below ln(256): it learned something in 4 steps
    assert summary["optimizer_steps"] == 4
    assert list(summary["topo"]["per_layer"]) == ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]
