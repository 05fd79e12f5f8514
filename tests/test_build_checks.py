"""Every group's settings are checked when the run is built: a bad one is one ConfigError naming it, raised before
the first training step, with nothing written in the run directory."""

import logging

import pytest
import torch
from hydra import compose, initialize_config_dir

from lightning.pytorch.utilities.model_summary import ModelSummary

from cli import ROOT, TINY
from toponets_exp.build import build_optim, build_run, plan_run
from toponets_exp.build.module import example_input
from toponets_exp.tasks import config_error

BAD = {  # group: (overrides, text the error must contain)
    "model": (["model=gpt_neo_125m"], "reads token ids, which data="),
    "data": (["data.batch_size=0"], "data.batch_size=0 must be an integer >= 1"),
    "model outputs": (["model.net.num_classes=5"], "model.net.num_classes=5 does not fit data.num_classes=10"),
    "data shift": (["data.augment_shift=-1"], "data.augment_shift=-1 must be an integer from 0 to data.image_size"),
    "data split seed": (["data.split_seed=-1"], "data.split_seed=-1 must be an integer in [0, 4294967295]"),
    "data size": (["data.image_size=16.5"], "data.image_size=16.5 must be an integer between 8 and 224"),
    "topo": (["topo.layers=[nope*]"], "topo.layers[0]='nope*' matches no layer"),
    "topo of another model": (["topo=topolm"], "topo.layers selects transformer.h.*.attn.c_proj, "
                              "transformer.h.*.mlp.c_proj, which name no layer of ResNet: they are another model's; "
                              "run it with model=nanogpt data=text_embedded"),
    "topo empty": (["topo.layers=[]"], "topo.layers is empty"),
    "topo item": (["topo.layers=[{factor:2}]"], "must be a name pattern or a mapping with 'pattern'"),
    "topo keys": (["+topo.reduce=sum"], "topo has unknown key(s) reduce; accepted: loss, weight"),
    "topo callback": (["topo.reduction=median"], "topo.reduction='median' is not supported"),
    "trainer": (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5 must be an integer"),
    "trainer accumulation": (["trainer.accumulate_grad_batches=0"],
                             "trainer.accumulate_grad_batches=0 must be an integer >= 1"),
    "trainer validation": (["trainer.val_check_interval=0"], "trainer.val_check_interval=0 must be a number of batches"),
    "trainer clip": (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1 must be >= 0"),
    "hardware": (["hardware=ddp_cpu", "trainer.devices=0"], "trainer: `Trainer(devices=0)` value is not a valid"),
    "logger": (["logger=wandb", "logger.wandb.mode=sometimes"], "logger.wandb.mode='sometimes' is not supported"),
    "logger images": (["logger=wandb", "logger.sheet_images_every_n_val=-1"],
                      "logger.sheet_images_every_n_val=-1 must be an integer >= 0"),
    "optim": (["optim.lr=-1"], "optim (torch.optim.AdamW): Invalid learning rate: -1"),
    "lr_schedule": (["trainer.max_epochs=-1"], "leaves lr_schedule=cosine without a horizon"),
    "lr_schedule warm-up": (["lr_schedule.warmup_steps=-1"], "lr_schedule.warmup_steps=-1 must be an integer >= 0"),
    "lr_schedule floor": (["lr_schedule.min_lr_ratio=2"], "lr_schedule.min_lr_ratio=2 must be a number in [0, 1]"),
    "ckpt_path": (["ckpt_path=/nonexistent.ckpt"], "ckpt_path='/nonexistent.ckpt' is not a file; give a Lightning"),
    "eval stimuli": (["eval.after_train=true", "eval.stimuli=/nonexistent/floc"], "eval.stimuli='/nonexistent/floc' is not a folder"),
    "eval": (["eval.after_train=true", "eval.smoothness=slope"], "eval.smoothness='slope' is not supported"),
    "eval after_train": (["eval.after_train=maybe"], "eval.after_train='maybe' must be true or false"),
    "eval layers": (["eval.after_train=true", "logger=wandb", "eval.layers=[layer9]"],
                    "eval.layers / eval.predictivity_layers name 'layer9', which is not a module of ResNet"),
    "eval predictivity": (["eval.after_train=true", "eval.predictivity_layers=[layer4]"],
                          "eval.predictivity_layers names 'layer4', which is not recorded"),
    "checkpoint": (["checkpoint.save_top_k=-2"], "checkpoint.save_top_k=-2 must be an integer >= -1"),
    "seed": (["seed=-1"], "seed=-1 must be an integer in [0, 4294967295]"),
}


@pytest.mark.parametrize("group", list(BAD))
def test_a_bad_setting_of_every_group_is_refused_before_training(group, tmp_path, monkeypatch):
    overrides, message = BAD[group]
    started = []
    monkeypatch.setattr(torch.optim.Optimizer, "step", lambda *a, **k: started.append(a))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, *overrides, f"paths.output_dir={tmp_path}"])
    with pytest.raises(Exception) as raised:  # noqa: PT011 - Hydra wraps what instantiated objects raise
        build_run(cfg, plan_run(cfg))
    err = config_error(raised.value)  # what the task layer prints as one line
    assert err is not None and message in str(err) and "\n" not in str(err), raised.value
    assert not started and not list(tmp_path.iterdir())  # no step taken, nothing written


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_an_optimizer_is_given_only_what_it_takes_and_named_with_its_arguments(caplog):
    with pytest.raises(Exception) as raised:  # noqa: PT011
        build_optim(composed("optim._target_=torch.optim.Adagrad"))
    assert str(config_error(raised.value)) == (
        "optim._target_=torch.optim.Adagrad takes no betas: drop it with ~optim.betas (it takes lr, lr_decay, "
        "weight_decay, initial_accumulator_value, eps, foreach, maximize, differentiable, fused)")
    with caplog.at_level(logging.INFO, logger="toponets_exp.build.module"):
        optimizer, _ = build_optim(composed("optim._target_=torch.optim.RAdam"))
    assert "optim: torch.optim.RAdam(lr=0.002, betas=[0.9, 0.999], weight_decay=0.05)" in caplog.messages
    assert isinstance(optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))]}]), torch.optim.RAdam)


def test_the_model_summary_counts_flops_on_an_input_of_the_data(tmp_path):
    cfg = composed(f"paths.output_dir={tmp_path}")
    run = build_run(cfg, plan_run(cfg))
    assert run.module.example_input_array.shape == (1, 3, 16, 16)
    assert ModelSummary(run.module).total_flops > 0
    lm = composed("experiment=nanogpt_embedded", f"paths.output_dir={tmp_path / 'lm'}")
    assert example_input(lm, None).shape == (1, 128) and example_input(lm, None).dtype == torch.long
