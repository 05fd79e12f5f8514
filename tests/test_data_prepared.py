"""Prepared ImageNet splits (task=prepare, data.prepared_dir): conversion, resumption, the same items as the folder
path, exact loader resume, DDP shares, and bad configuration in one line."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image
from torchvision.datasets import ImageFolder

from cli import run_cli
from toponets_exp.data import ImageNetDataModule
from toponets_exp.data import prepared as prep
from toponets_exp.data.jpeg import capped_size
from toponets_exp.data.prepared import PreparedDataError, PreparedImages, is_prepared, prepare_split
from toponets_exp.data.resumable import SeededItems
from toponets_exp.data.vision import IMAGENET_MEAN, IMAGENET_STD
from toponets_exp.errors import ConfigError
from toponets_exp.tasks.prepare import prepare

ROOT = Path(__file__).resolve().parents[1]
MAX_SIDE, CROP, PER_CHUNK = 48, 32, 4
# (width, height): three fit within MAX_SIDE (stored byte for byte), three are downscaled
SIZES = [(30, 40), (72, 54), (48, 36), (36, 60), (44, 44), (80, 50)]
OPTIONS = [f"data.image_size={CROP}", f"data.prepared_max_side={MAX_SIDE}", "data.num_workers=0",
           "data.num_classes=3"]


def smooth_image(rng: np.random.Generator, width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Smooth colour waves plus mild noise: resampling differences stay small."""
    yy, xx = np.mgrid[0:height, 0:width] / 9.0
    phase = rng.uniform(0, 6, 3)
    waves = np.stack([np.sin(xx + phase[c]) * np.cos(yy - phase[c]) for c in range(3)], -1)
    image = Image.fromarray(np.uint8(np.clip(127.5 * (waves + 1) + rng.normal(0, 4, waves.shape), 0, 255)))
    return image.convert(mode)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """{train,val}/{a,b,c}/: 6 train and 2 val images per class, JPEG of several sizes, one PNG, one grayscale."""
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for c, name in enumerate("abc"):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                width, height = SIZES[(i + c) % len(SIZES)]
                mode = "L" if (split, name, i) == ("val", "b", 1) else "RGB"
                suffix = "png" if (split, name, i) == ("train", "c", 0) else "jpg"
                smooth_image(rng, width, height, mode).save(root / split / name / f"{i}.{suffix}", quality=90)
    return root


@pytest.fixture(scope="module")
def prepared(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both splits prepared at MAX_SIDE, PER_CHUNK images per chunk."""
    out = tmp_path_factory.mktemp("prepared")
    for split in ("train", "val"):
        assert prepare_split(prep.class_folder(source / split), out / split, MAX_SIDE, 90, images_per_chunk=PER_CHUNK)
    return out


def datamodule(**kwargs) -> ImageNetDataModule:
    """A set-up ImageNetDataModule of the test images."""
    dm = ImageNetDataModule(**{"num_classes": 3, "image_size": CROP, "batch_size": 3, "num_workers": 0,
                               "pin_memory": False, **kwargs})
    dm.setup("fit")
    return dm


def kept(path: str) -> bool:
    """Whether an image file is stored byte for byte: a JPEG within MAX_SIDE."""
    with Image.open(path) as image:
        return image.format == "JPEG" and max(image.size) <= MAX_SIDE


def test_prepared_split_holds_the_folder_images_resized_in_order(source: Path, prepared: Path) -> None:
    folder, items = ImageFolder(str(source / "train")), PreparedImages(prepared / "train")
    assert len(items) == 18 and items.classes == folder.classes == ["a", "b", "c"]
    index = json.loads((prepared / "train" / "index.json").read_text())
    assert len(index["chunks"]) == 5 and [c["chunk_size"] for c in index["chunks"]] == [4, 4, 4, 4, 2]
    for i, (path, label) in enumerate(folder.samples):
        image, stored_label = items[i]
        original = Image.open(path)
        assert stored_label == label and image.dtype == torch.uint8
        assert tuple(image.shape) == (3, *reversed(capped_size(*original.size, MAX_SIDE)))
        if kept(path):  # the pixels the folder path decodes
            assert torch.equal(image, torch.from_numpy(np.array(original.convert("RGB"))).permute(2, 0, 1))
    assert capped_size(80, 50, 48) == (48, 30) and capped_size(30, 40, 48) == (30, 40)
    meta = json.loads((prepared / "train" / "prepared.json").read_text())
    assert meta["max_side"] == MAX_SIDE and meta["images"] == 18 and meta["chunks"] == 5


def test_a_finished_split_is_kept_and_never_overwritten(source: Path, prepared: Path, tmp_path: Path) -> None:
    folder = prep.class_folder(source / "train")
    files = sorted((prepared / "train").iterdir())
    before = [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in files]
    assert not prepare_split(folder, prepared / "train", MAX_SIDE, 90, images_per_chunk=PER_CHUNK)
    with pytest.raises(PreparedDataError, match=r"other files or settings \(max_side: 48 -> 64\); it is kept"):
        prepare_split(folder, prepared / "train", 64, 90)
    assert [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted((prepared / "train").iterdir())] == before
    (tmp_path / "train" / "mine").mkdir(parents=True)
    with pytest.raises(PreparedDataError, match="exists and is not a prepared split; it is left as it is"):
        prepare_split(folder, tmp_path / "train", MAX_SIDE, 90)
    assert [p.name for p in (tmp_path / "train").iterdir()] == ["mine"]


def test_an_interrupted_conversion_resumes_after_its_complete_chunks(source: Path, prepared: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder, dest, encode = prep.class_folder(source / "train"), tmp_path / "train", prep.encode_image
    calls: list[str] = []

    def encode_until(limit: int):
        def counted(path: str, max_side: int, quality: int) -> bytes:
            if len(calls) == limit:
                raise KeyboardInterrupt
            calls.append(path)
            return encode(path, max_side, quality)
        return counted

    monkeypatch.setattr(prep, "encode_image", encode_until(9))  # chunks 0 and 1 complete, chunk 2 begun
    with pytest.raises(KeyboardInterrupt):
        prepare_split(folder, dest, MAX_SIDE, 90, images_per_chunk=PER_CHUNK)
    assert not dest.exists() and not is_prepared(prep.partial_dir(dest))
    assert sorted(p.name for p in prep.partial_dir(dest).glob("*.index.json")) == ["0.index.json", "1.index.json"]
    calls.clear()
    monkeypatch.setattr(prep, "encode_image", encode_until(100))
    assert prepare_split(folder, dest, MAX_SIDE, 90, images_per_chunk=PER_CHUNK)
    assert calls == [path for path, _ in folder.samples[8:]]  # only the chunks not written before
    assert not prep.partial_dir(dest).exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in (prepared / "train").iterdir())
    for chunk in dest.glob("chunk-*.bin"):
        assert chunk.read_bytes() == (prepared / "train" / chunk.name).read_bytes()


def test_an_unfinished_conversion_of_other_settings_starts_again(source: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder, dest, encode = prep.class_folder(source / "train"), tmp_path / "train", prep.encode_image
    calls: list[int] = []

    def counted(path: str, max_side: int, quality: int) -> bytes:
        calls.append(quality)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return encode(path, max_side, quality)

    monkeypatch.setattr(prep, "encode_image", counted)
    with pytest.raises(KeyboardInterrupt):
        prepare_split(folder, dest, MAX_SIDE, 90, images_per_chunk=PER_CHUNK)
    assert prepare_split(folder, dest, MAX_SIDE, 80, images_per_chunk=PER_CHUNK)
    assert calls[6:] == [80] * 18 and json.loads((dest / "prepared.json").read_text())["quality"] == 80


def test_eval_tensors_equal_the_folder_path_for_images_within_the_max_side(source: Path, prepared: Path) -> None:
    """Images that fit are stored as they are: the same tensors. Larger ones were downscaled (Lanczos) before the
    eval resize, so they differ by resampling only."""
    folder, fast = datamodule(root=str(source)), datamodule(prepared_dir=str(prepared), prepared_max_side=MAX_SIDE)
    fitting = 0
    for i, (path, _) in enumerate(ImageFolder(str(source / "val")).samples):
        (x, y), (xp, yp) = folder.splits["val"][i], fast.splits["val"][i]
        assert y == yp and x.shape == xp.shape == (3, CROP, CROP)
        if kept(path):
            fitting += 1
            assert torch.equal(x, xp)
        else:
            std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
            assert ((x - xp) * std).abs().mean() < 0.03  # in [0, 1] pixel units
    assert fitting == 3
    xv, yv = next(iter(fast.val_dataloader()))
    assert xv.shape == (3, 3, CROP, CROP) and yv.tolist() == [0, 0, 1]


def test_train_crops_are_the_folder_path_crops_seed_for_seed(source: Path, prepared: Path) -> None:
    folder = SeededItems(datamodule(root=str(source)).splits["train"])
    fast = SeededItems(datamodule(prepared_dir=str(prepared), prepared_max_side=MAX_SIDE).splits["train"])
    low = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    high = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    samples = ImageFolder(str(source / "train")).samples
    for i, (path, label) in enumerate(samples):
        x, y = fast[(i, 7)]
        assert y == label and x.shape == (3, CROP, CROP) and x.dtype == torch.float32
        assert ((x >= low.view(3, 1, 1) - 1e-5) & (x <= high.view(3, 1, 1) + 1e-5)).all()
        assert torch.equal(fast[(i, 7)][0], x) and not torch.equal(fast[(i, 8)][0], x)
        if kept(path):  # same pixels, same crop and flip draws
            assert torch.equal(folder[(i, 7)][0], x)


def test_training_loader_resumes_inside_an_epoch_exactly(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")

    def loader(**kwargs):
        dm = datamodule(prepared_dir=str(prepared), prepared_max_side=MAX_SIDE, **kwargs)
        train = dm.train_dataloader()
        train.sampler.set_epoch(1)
        return train

    full = [(x, y) for x, y in loader()]
    assert len(full) == 6  # 18 images, batch 3
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(full, loader(num_workers=2)))  # workers reopen chunks
    interrupted = loader()
    batches = iter(interrupted)
    next(batches), next(batches)
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches": 2}
    resumed = loader()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == 4
    assert all(torch.equal(x, fx) and torch.equal(y, fy) for (x, y), (fx, fy) in zip(rest, full[2:]))


def test_ranks_get_disjoint_shares_of_the_global_images(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from litdata.utilities.env import _DistributedEnv

    single = [PreparedImages(prepared / "train")[i] for i in range(18)]
    monkeypatch.setattr(_DistributedEnv, "detect", classmethod(lambda cls: cls(2, 1, 1)))  # as litdata on rank 1
    on_rank = PreparedImages(prepared / "train")
    assert all(torch.equal(on_rank[i][0], x) and on_rank[i][1] == y for i, (x, y) in enumerate(single))
    shares = []
    for rank in (0, 1):
        dm = datamodule(prepared_dir=str(prepared), prepared_max_side=MAX_SIDE)
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        train = dm.train_dataloader()
        shares.append([index for index, _ in train.sampler])
        assert len(train) == 3 and sum(len(y) for _, y in train) == 9
    assert not set(shares[0]) & set(shares[1]) and sorted(shares[0] + shares[1]) == list(range(18))


def config(*overrides: str) -> DictConfig:
    """The composed config with `overrides`."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_bad_configuration_is_one_clear_error(source: Path, prepared: Path, tmp_path: Path) -> None:
    root, out = f"data.root={source}", f"data.prepared_dir={tmp_path / 'out'}"
    cases = [
        ([], "use data=imagenet with data.root=/path/to/imagenet data.prepared_dir="),
        (["data=imagenet", out], "data.root is not set: task=prepare converts the class folders of data.root/train/"),
        (["data=imagenet", root], "data.prepared_dir is not set"),
        (["data=imagenet", root, out, "data.prepared_max_side=16"],
         "data.prepared_max_side=16 must be an integer >= 224, the largest crop"),
        (["data=imagenet", root, out, "data.image_size=32", "data.eval_image_size=64", "data.prepared_max_side=48"],
         "data.prepared_max_side=48 must be an integer >= 64"),
        (["data=imagenet", root, out, "data.image_size=32", "data.prepared_max_side=48", "data.prepared_quality=0"],
         "data.prepared_quality=0 must be an integer JPEG quality in 1-100"),
        (["data=imagenet", root, out, "data.val_split=validation"], "has no validation/ folder"),
        (["data=imagenet", root, f"data.prepared_dir={source / 'train' / 'out'}"], "is inside the source folder"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            prepare(config("task=prepare", *overrides))
    with pytest.raises(ConfigError, match=r"data.prepared_dir=.*/out/train is not a prepared split .*prepare it "
                                          r"first: python run.py task=prepare data=imagenet"):
        ImageNetDataModule(prepared_dir=str(tmp_path / "out"), image_size=CROP, prepared_max_side=MAX_SIDE)
    with pytest.raises(ConfigError, match="train/ was prepared with data.prepared_max_side=48, this run has "
                                          "data.prepared_max_side=64; set data.prepared_max_side=48"):
        ImageNetDataModule(prepared_dir=str(prepared), image_size=CROP, prepared_max_side=64)
    with pytest.raises(ConfigError, match="data.num_classes=1000 but the data has 3 classes"):
        ImageNetDataModule(prepared_dir=str(prepared), image_size=CROP, prepared_max_side=MAX_SIDE).setup("fit")


def test_cli_prepares_once_and_rejects_bad_values(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    args = ["task=prepare", "data=imagenet", f"data.root={source}", f"data.prepared_dir={out}", *OPTIONS]
    proc = run_cli(*args, "data.num_workers=1", f"hydra.run.dir={tmp_path / 'run'}")  # one conversion process
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "train: 18 images of 3 classes, prepared" in proc.stdout and "val: 6 images of 3 classes" in proc.stdout
    assert is_prepared(out / "train") and is_prepared(out / "val")
    bad = run_cli(*args, "data.prepared_quality=101", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2, bad.stdout[-3000:]
    assert "Configuration error: data.prepared_quality=101 must be an integer JPEG quality in 1-100" in bad.stdout
