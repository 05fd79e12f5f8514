"""The SimCLR objective: its loss is NT-Xent as SimCLR defines it, its head TDANN's, its views torchvision's ops drawn
from its own generator, a resumed run draws the views (and reaches the weights) of an uninterrupted one, and
`python run.py experiment=simclr_digits` trains, tests and evaluates a trunk."""

import json
import math
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.transforms.v2 import functional as TF

from cli import read_csv, run_cli
from test_experiments import composed
from toponets_exp.build.data import check_model_data
from toponets_exp.data.resumable import ResumableLoader
from toponets_exp.errors import ConfigError
from toponets_exp.lit import ReleaseProcessGroup, SimCLR
from toponets_exp.lit import simclr_color as C
from toponets_exp.lit import simclr_views as V
from toponets_exp.lit.optim import warmup_cosine
from toponets_exp.lit.simclr import STREAMS, VIEWS_RNG
from toponets_exp.models.resnet import tdann_architecture, tdann_trunk
from toponets_exp.resolvers import linear_lr

STATS = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
OPTIM = {"optimizer": partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-6),
         "lr_schedule": partial(warmup_cosine, warmup_steps=1)}
SAME_VIEWS = {"crop_scale": [1, 1], "crop_ratio": [1, 1], "flip_p": 0, "jitter_p": 0, "grayscale_p": 0, "blur_p": 0}


def trunk() -> nn.Module:
    """A small trunk of pooled features (8), with BatchNorm: the same weights at every call."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


def small_simclr(**kwargs) -> SimCLR:
    return SimCLR(trunk(), feature_dim=8, hidden_dim=16, projection_dim=4, pixel_stats=STATS, **OPTIM, **kwargs)


def nt_xent_by_definition(z0: torch.Tensor, z1: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR's NT-Xent written out: 2N embeddings, cosine similarity / tau, each one's positive the other view of
    its image, the other 2N - 2 its negatives, -log softmax of the positive, mean over the 2N."""
    z = torch.cat((z0, z1)).double()
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        positive = (i + n2 // 2) % n2
        sims = [F.cosine_similarity(z[i], z[k], dim=0) / tau for k in range(n2) if k != i]
        others = torch.stack(sims)
        total += -(F.cosine_similarity(z[i], z[positive], dim=0) / tau - torch.logsumexp(others, 0))
    return total / n2


def test_tdann_trunk_with_the_small_input_stem_is_read_back_from_its_weights() -> None:
    net = tdann_trunk(18, 0, small_input=True)
    assert net.conv1.kernel_size == (3, 3) and isinstance(net.maxpool, nn.Identity)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 512)
    assert tdann_architecture(net.state_dict(), {}) == {"depth": 18, "num_classes": 0, "small_input": True}
    assert tdann_architecture(tdann_trunk(18, 0).state_dict(), {}) == {"depth": 18, "num_classes": 0}


def test_loss_is_nt_xent_as_simclr_defines_it() -> None:
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    module = small_simclr()
    assert module.hparams.temperature == 0.1
    expected = nt_xent_by_definition(z0, z1, 0.1)
    torch.testing.assert_close(module.criterion(z0, z1).double(), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(module.eval_criterion(z0, z1).double(), expected, atol=1e-5, rtol=0)
    views = torch.randn(2, 6, 3, 8, 8, generator=g)
    module.eval()  # BatchNorm's running statistics: the same features whichever way they are computed
    with torch.no_grad():
        projected = [module.head(module.net(v)) for v in views]
        torch.testing.assert_close(module.views_loss(*views).double(), nt_xent_by_definition(*projected, 0.1),
                                   atol=1e-5, rtol=0)


def test_loss_is_float32_under_bf16_autocast() -> None:
    module = small_simclr()
    module.eval()
    views = torch.randn(2, 6, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        projected = module.projections(*views)
        loss = module.views_loss(*views)
    assert projected[0].dtype == torch.bfloat16 and loss.dtype == torch.float32
    expected = nt_xent_by_definition(*(z.float() for z in projected), 0.1)
    torch.testing.assert_close(loss.double(), expected, atol=1e-5, rtol=0)


def test_head_is_tdanns_mlp() -> None:
    """Linear(512, 512) with bias, ReLU, Linear(512, 128) with bias: VISSL's mlp heads of TDANN's config."""
    module = SimCLR(nn.Flatten(), **OPTIM)
    layers = list(module.head.layers)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (512, 512, 128)
    assert layers[0].bias is not None and layers[2].bias is not None
    assert module.head(torch.zeros(3, 512)).shape == (3, 128)
    with pytest.raises(ConfigError, match="model.lit.feature_dim=512 but the backbone gives features of shape"):
        module.projections(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))


def test_batched_ops_compute_torchvisions_per_image() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(12, 3, 10, 14, generator=g)
    factor, hue = torch.rand(12, generator=g) * 1.6 + 0.2, torch.rand(12, generator=g) - 0.5
    for ours, theirs, amount in ((C.adjust_brightness, TF.adjust_brightness, factor),
                                 (C.adjust_contrast, TF.adjust_contrast, factor),
                                 (C.adjust_saturation, TF.adjust_saturation, factor),
                                 (C.adjust_hue, TF.adjust_hue, hue)):
        expected = torch.stack([theirs(im, float(a)) for im, a in zip(images, amount)])
        torch.testing.assert_close(ours(images, amount), expected, atol=2e-6, rtol=0)
    torch.testing.assert_close(C.grayscale(images), TF.rgb_to_grayscale(images), atol=1e-6, rtol=0)
    boxes = V.crop_boxes(g, 12, 10, 14, (0.08, 1.0), (3 / 4, 4 / 3))
    flip = torch.rand(12, generator=g) < 0.5
    expected = [TF.resized_crop(im, *box.tolist(), [10, 14], antialias=True) for im, box in zip(images, boxes)]
    expected = torch.stack([TF.horizontal_flip(e) if f else e for e, f in zip(expected, flip)])
    torch.testing.assert_close(V.resized_crops(images, boxes, flip), expected, atol=1e-5, rtol=0)
    sigma = torch.rand(12, generator=g, dtype=torch.float64) * 1.9 + 0.1
    expected = torch.stack([TF.gaussian_blur(im, [7, 7], [float(s)] * 2) for im, s in zip(images, sigma)])
    torch.testing.assert_close(V.gaussian_blur(images, sigma, 7), expected, atol=1e-6, rtol=0)


def test_crop_boxes_lie_inside_the_image_within_the_scale_and_ratio() -> None:
    boxes = V.crop_boxes(torch.Generator().manual_seed(0), 2000, 16, 16, (0.08, 1.0), (3 / 4, 4 / 3))
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 16).all() and (left + w <= 16).all()
    assert (h * w >= 1).all() and (h * w <= 256).all() and len({tuple(b) for b in boxes.tolist()}) > 200


def test_views_are_a_function_of_the_generator_state() -> None:
    images = (torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.5) / 0.25
    stats = ((0.5,), (0.25,))
    first = V.two_views(images, torch.Generator().manual_seed(3), V.ViewSettings(), stats)
    again = V.two_views(images, torch.Generator().manual_seed(3), V.ViewSettings(), stats)
    other = V.two_views(images, torch.Generator().manual_seed(4), V.ViewSettings(), stats)
    assert first[0].shape == (5, 3, 8, 8) and all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[0], other[0])
    same = V.two_views(images, torch.Generator().manual_seed(3), V.view_settings(SAME_VIEWS), stats)
    torch.testing.assert_close(same[0], images.expand(-1, 3, -1, -1), atol=1e-5, rtol=0)


def test_bad_settings_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^model.lit.views has no foo; its keys are crop_scale, "):
        V.view_settings({"foo": 1})
    with pytest.raises(ConfigError, match=r"^model.lit.views.blur_sigma=\[2, 1\] must be a pair"):
        V.view_settings({"blur_sigma": [2, 1]})
    with pytest.raises(ConfigError, match=r"^model.lit.views.flip_p=1.5 must be in \[0, 1\]"):
        V.view_settings({"flip_p": 1.5})
    with pytest.raises(ConfigError, match=r"^model.lit.temperature=0 must be >= 1e-08"):
        small_simclr(temperature=0)


def test_lr_scales_with_the_global_batch_and_needs_a_device_count() -> None:
    assert linear_lr(0.3, 256, 128, 4, 1, 1) == pytest.approx(0.6)  # TDANN: 4 GPUs x 128 images
    assert linear_lr(0.3, 256, 64, [0, 1], 2, 1) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match=r"^trainer.devices=-1: optim.lr's linear scaling"):
        linear_lr(0.3, 256, 128, -1)


def test_a_trunk_without_classes_fits_the_data_under_simclr_only() -> None:
    cfg = OmegaConf.create({"model": {"net": {"num_classes": 0}, "lit": {"_target_": "toponets_exp.lit.SimCLR"},
                                      "eval": {"kind": "vision"}}, "data": {"num_classes": 10}})
    check_model_data(cfg)
    cfg.model.lit._target_ = "toponets_exp.lit.ImageClassifier"
    with pytest.raises(ConfigError, match="model.net.num_classes=0 does not fit data.num_classes=10"):
        check_model_data(cfg)


class StepLosses(L.Callback):
    """The training loss of every step; a checkpoint at step `save_at` (as a run's last.ckpt is written)."""

    def __init__(self, save_at: int | None = None, path=None) -> None:
        self.losses: list[float] = []
        self.save_at, self.path = save_at, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))
        if trainer.global_step == self.save_at:
            trainer.save_checkpoint(self.path)


def fit(module: SimCLR, losses: StepLosses, ckpt_path=None) -> list[float]:
    """4 optimizer steps over 3 batches an epoch (a shuffled, resumable loader), from `ckpt_path` if given."""
    g = torch.Generator().manual_seed(0)
    data = TensorDataset((torch.rand(12, 3, 8, 8, generator=g) - 0.5) / 0.25, torch.zeros(12, dtype=torch.long))
    trainer = L.Trainer(max_steps=4, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[losses, ReleaseProcessGroup()])
    trainer.fit(module, train_dataloaders=ResumableLoader(data, batch_size=4, seed=0), ckpt_path=ckpt_path)
    return losses.losses


def test_resumed_training_draws_the_same_views_and_ends_identical(tmp_path) -> None:
    """4 steps through (a checkpoint written at step 2, inside the first epoch of 3 batches), against 2 steps from
    that checkpoint in a new module and trainer: the same loss at steps 3 and 4, the same weights, optimizer-driven
    and BatchNorm state and views generator, bit for bit."""
    whole = small_simclr(seed=5)
    through = fit(whole, StepLosses(save_at=2, path=tmp_path / "step2.ckpt"))
    resumed = small_simclr(seed=5)
    after = fit(resumed, StepLosses(), ckpt_path=tmp_path / "step2.ckpt")
    assert len(through) == 4 and after == through[2:]
    state, again = whole.state_dict(), resumed.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)
    assert torch.equal(whole.views_rng.get_state(), resumed.views_rng.get_state())
    assert fit(small_simclr(seed=6), StepLosses())[0] != through[0]  # the seed picks the views


def test_a_checkpoint_of_another_rank_count_restarts_the_views_from_the_step(caplog) -> None:
    saved = torch.stack([torch.Generator().manual_seed(s).get_state() for s in (1, 2)])
    module = small_simclr(seed=3)
    with caplog.at_level("INFO"):
        module.on_load_checkpoint({"state_dict": {}, "global_step": 7, VIEWS_RNG: saved})
    assert "holds no training-views generator for 1 rank(s): views drawn anew from (seed, rank, step 7)" in caplog.text
    expected = torch.Generator().manual_seed(V.stream_seed(3, 0, STREAMS["restarted"], 7))
    assert torch.equal(module.views_rng.get_state(), expected.get_state())


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # a step called without a trainer
def test_held_out_views_do_not_depend_on_training() -> None:
    module = small_simclr(seed=2)
    module.eval()
    batch = ((torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.5) / 0.25, None)

    def val_loss() -> float:
        module.eval_loss["val_"].reset()
        with torch.no_grad():
            module.validation_step(batch, 1)
        return float(module.eval_loss["val_"].compute())

    first = val_loss()
    V.two_views(batch[0], module._training_views(), module.settings, STATS)  # training draws views meanwhile
    assert val_loss() == first


def test_simclr_digits_recipe_has_tdanns_settings() -> None:
    cfg = composed("simclr_digits", "hydra.runtime.output_dir=/tmp/out")
    plain = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    assert plain["model"]["lit"]["_target_"] == "toponets_exp.lit.SimCLR" and plain["model"]["lit"]["seed"] == 0
    assert plain["model"]["net"] == {"_target_": "toponets_exp.models.resnet.tdann_trunk", "depth": 18,
                                     "num_classes": 0, "small_input": True}
    assert plain["optim"]["lr"] == pytest.approx(0.3 * 128 / 256) and plain["optim"]["weight_decay"] == 1e-6
    assert plain["optim"]["momentum"] == 0.9 and plain["optim"]["nesterov"] is False
    assert plain["lr_schedule"]["min_lr_ratio"] == 0 and plain["lr_schedule"]["warmup_steps"] == 0
    assert plain["topo"]["weight"] == 0 and plain["eval"]["efficiency"] is False
    settings = V.view_settings(plain["model"]["lit"]["views"])
    assert settings == V.ViewSettings(blur_sigma=settings.blur_sigma)  # TDANN's, the blur scaled to 16 px


def test_simclr_digits_experiment_trains_tests_and_reads_out(tmp_path) -> None:
    """The experiment end to end on tiny settings (one layer's maps evaluated): a trunk trained by SimCLR, its test
    loss, the evaluation's linear read-out of its pooled features (no classifier to score), checkpoints and
    metrics, and the LR scaled to the global batch of 16."""
    out = tmp_path / "run"
    proc = run_cli("experiment=simclr_digits", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                   "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1",
                   "data.image_size=8", "data.batch_size=16", "trainer.enable_progress_bar=false",
                   "trainer.enable_model_summary=false", "eval.gratings=false", "topo.layers=[layer4.1.conv1]",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["optimizer_steps"] == 2 and math.isfinite(summary["test"]["loss"])
    report = json.loads((out / "report.json").read_text())
    assert report["readout"]["layer"] == "avgpool" and report["readout"]["features"] == 512
    assert report["accuracy"]["source"] == "readout" and "efficiency" not in report
    rows = read_csv(out / "metrics.csv")
    assert [r["train/loss_step"] for r in rows if r.get("train/loss_step")] and any(r.get("val/loss") for r in rows)
    assert {p.name for p in (out / "checkpoints").iterdir()} >= {"last.ckpt"}
    resolved = OmegaConf.load(out / "config_resolved.yaml")
    assert resolved.optim.lr == pytest.approx(0.3 * 16 / 256)
