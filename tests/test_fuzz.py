"""Bad input through the CLI, as a table: non-zero exit, one line naming the key/value and what is accepted,
nothing written in the run directory."""

import pytest
from PIL import Image

from cli import TINY, run_cli

pytestmark = pytest.mark.slow

TRAIN = [  # (overrides, text the one error line must contain)
    (["topo.weight=[1,2]"], "topo.weight=[1, 2] is not a number"),
    (["topo.weight=-0.5"], "topo.weight=-0.5 must be >= 0"),
    (["topo.weight=nan"], "topo.weight=nan must be finite"),
    (["topo.weight=inf"], "topo.weight=inf must be finite"),
    (["topo.factor=0"], "factor_h=0 must be >= 1"),
    (["topo.factor=-2"], "factor_h=-2 must be >= 1"),
    (["topo.factor=nan"], "factor_h=nan must be finite"),
    (["topo.factor=inf"], "factor_h=inf must be finite"),
    (["topo.factor=abc"], "is not a number"),
    (["topo.layers=[]"], "topo.layers is empty"),
    (["topo.layers=[{pattern:conv1,factr:2}]"], "has unknown key(s) factr; accepted: factor, factor_h"),
    (["topo.layers=[{factor:2}]"], "must be a name pattern or a mapping with 'pattern'"),
    (["topo.layers=[{pattern:conv1,weight:-1}]"], "topo.layers[0].weight=-1 must be >= 0"),
    (["trainer.devices=0"], "trainer: `Trainer(devices=0)` value is not a valid input"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' must be an integer"),
    (["trainer.accumulate_grad_batches=1.5"], "trainer.accumulate_grad_batches=1.5 must be an integer"),
    (["data.batch_size=0"], "data.batch_size=0 must be an integer >= 1"),
    (["data.num_workers=-1"], "data.num_workers=-1 must be an integer >= 0"),
    (["data=imagenet", "data.root=/nonexistent/imagenet"], "data.root='/nonexistent/imagenet' has no train/ folder"),
    (["checkpoint.every_n_train_steps=-1"], "checkpoint.every_n_train_steps=-1 must be an integer >= 0"),
    (["seed=1.5"], "seed=1.5 must be an integer"),
    (["optim._target_=torch.optim.Adamm"], "optim._target_='torch.optim.Adamm' cannot be built"),
    (["optim.lr=-1"], "optim (torch.optim.AdamW): Invalid learning rate: -1"),
    (["optim=sgd", "+optim.betas=[0.9,0.99]"], "optim._target_=torch.optim.SGD takes no betas: drop it with "
                                                "~optim.betas (it takes lr, momentum"),
    (["model=gpt_neo_125m"], "model=gpt_neo_125m reads token ids, which data=digits does not give (no "
                             "data.vocab_size); use data=fineweb_edu | hf_text | openwebtext | text_embedded"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 (no end) leaves lr_schedule=cosine without a horizon"),
    (["eval.after_train=true", "eval.stimuli=/nonexistent/floc"],  # refused before training, not after it
     "eval.stimuli='/nonexistent/floc' is not a folder with one subfolder of images per category"),
    (["topo=topolm"], "topo=topolm selects transformer.h.*.attn.c_proj, transformer.h.*.mlp.c_proj, which name no "
                      "layer of ResNet: they are another model's; run it with model=nanogpt data=text_embedded"),
]


def check_refused(proc, out, message):
    assert proc.returncode != 0, proc.stdout[-2000:]
    errors = [line for line in proc.stdout.splitlines() if "Configuration error:" in line]
    assert len(errors) == 1 and message in errors[0], (message, errors or proc.stdout[-2000:])
    assert "Traceback" not in proc.stdout
    assert not out.exists(), sorted(p.name for p in out.iterdir())  # the refused run leaves no directory


@pytest.mark.parametrize("overrides,message", TRAIN, ids=[" ".join(t[0]) for t in TRAIN])
def test_bad_training_input(overrides, message, tmp_path):
    out = tmp_path / "run"
    check_refused(run_cli(*TINY, *overrides, f"hydra.run.dir={out}"), out, message)


def test_unknown_group_is_hydras_error(tmp_path):
    proc = run_cli(*TINY, "hardware=tpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1 and "Could not find 'hardware/tpu'" in proc.stdout
    assert not (tmp_path / "run").exists()


def stimuli(root, folders, broken=False):
    for name in folders:
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 16), (40 * i, 90, 200)).save(root / name / f"{i}.png")
    if broken:
        (root / folders[-1] / "broken.png").write_bytes(b"not a png")
    root.mkdir(exist_ok=True)
    return root


@pytest.mark.parametrize("kind,message", [
    ("empty", "Couldn't find any class folder"),
    ("one category", "has 1 category folder(s) (faces); category selectivity needs at least 2"),
    ("unreadable image", "cannot read image"),
    ("no images", "Found no valid file for the classes"),
    ("missing", "is not a folder with one subfolder of images per category"),
])
def test_bad_stimuli(tiny_checkpoint, tmp_path, kind, message):
    root = tmp_path / "stimuli"
    if kind == "one category":
        stimuli(root, ["faces"])
    elif kind == "unreadable image":
        stimuli(root, ["faces", "houses"], broken=True)
    elif kind == "no images":
        for name in ("a", "b"):
            (root / name).mkdir(parents=True)
            (root / name / "notes.txt").write_text("x")
    elif kind == "empty":
        root.mkdir()
    out = tmp_path / "eval"
    proc = run_cli("task=eval", f"ckpt_path={tiny_checkpoint}", f"eval.stimuli={root}", "data.image_size=8",
                   f"hydra.run.dir={out}")
    check_refused(proc, out, message)
