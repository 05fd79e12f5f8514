"""Image DataModules on tiny real files: ImageNet-style class folders, an HF parquet image dataset, fake CIFAR-10."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from PIL import Image
from torchvision.datasets import CIFAR10
from torchvision.transforms import v2

from toponets_exp.data import CIFAR10DataModule, ImageNetDataModule
from toponets_exp.data.vision import (EVAL_CROP_RATIO, IMAGENET_MEAN, IMAGENET_STD, imagenet_eval_transform,
                                      imagenet_train_transform, to_normalized_tensor)
from toponets_exp.errors import ConfigError

CLASSES = ("n01440764", "n01443537", "n01484850")


def random_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """A random RGB image."""
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/{train,val}/<class>/*.png with random sizes (4 train, 2 val images per class)."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for cls in CLASSES:
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                height, width = rng.integers(40, 90, size=2)
                random_image(rng, int(height), int(width)).save(root / split / cls / f"{i}.png")
    return root


def test_imagenet_folders_give_normalised_batches(image_folder: Path) -> None:
    dm = ImageNetDataModule(root=str(image_folder), num_classes=3, image_size=32, batch_size=4, num_workers=0,
                            pin_memory=False)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and set(y.tolist()) <= {0, 1, 2}
    assert len(dm.train_dataloader()) == 3  # 12 images, batch 4, drop_last
    xv, yv = next(iter(dm.val_dataloader()))
    assert xv.shape == (4, 3, 32, 32) and yv.tolist() == [0, 0, 1, 1]
    assert len(dm.test_dataloader().dataset) == 6


def test_imagenet_center_crop_training_images_are_the_eval_transforms(image_folder: Path) -> None:
    """data.train_crop=center (SimCLR makes its own views): training items are resized and centre-cropped as val's,
    the same every epoch; another value is a one-line config error."""
    dm = ImageNetDataModule(root=str(image_folder), num_classes=3, image_size=32, batch_size=4, num_workers=0,
                            pin_memory=False, train_crop="center")
    dm.setup("fit")
    item, label = dm.splits["train"][5]
    image, same = dm.splits["train"].base[5]
    assert label == same and torch.equal(item, imagenet_eval_transform(32)(image))
    assert torch.equal(dm.splits["train"][5][0], item)
    with pytest.raises(ConfigError, match="data.train_crop='corner'"):
        ImageNetDataModule(root=str(image_folder), num_classes=3, train_crop="corner")


def test_imagenet_eval_transform_is_resize_then_center_crop() -> None:
    yy, xx = np.mgrid[0:90, 0:130] / 40.0
    smooth = np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1)  # smooth, so resampling details stay small
    image = Image.fromarray(np.uint8(127.5 * (smooth + 1)))
    out = imagenet_eval_transform(56)(image)
    short = 64  # round(56 * 256 / 224)
    resized = image.resize((round(130 * short / 90), short), Image.BILINEAR)
    left, top = (resized.size[0] - 56) // 2, (short - 56) // 2
    ref = np.asarray(resized.crop((left, top, left + 56, top + 56)), dtype=np.float32) / 255.0
    ref = (ref - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert out.shape == (3, 56, 56)
    assert np.abs(out.numpy().transpose(1, 2, 0) - ref).max() < 0.1  # < 0.025 in [0, 1] pixel units


def test_imagenet_transforms_are_torchvisions_seed_for_seed() -> None:
    """Same crop boxes, flips and antialiased bilinear pixels as torchvision's v2 pipeline for PIL images and uint8
    tensors (grayscale too); only the standardisation's float32 rounding may differ (scale and shift instead of
    divide, subtract, divide: a few 1e-7, while any other pixel or box difference is >= 1/255/0.229 = 0.017)."""
    rng = np.random.default_rng(2)
    norm = to_normalized_tensor(IMAGENET_MEAN, IMAGENET_STD)
    ref_train = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(24, antialias=True), v2.RandomHorizontalFlip(), *norm])
    ref_eval = v2.Compose([v2.ToImage(), v2.Resize(round(24 / EVAL_CROP_RATIO), antialias=True), v2.CenterCrop(24),
                           *norm])
    train, evaluate = imagenet_train_transform(24), imagenet_eval_transform(24)
    rgb = random_image(rng, 50, 70)
    images = [rgb, rgb.convert("L"), Image.fromarray(rng.integers(0, 256, (120, 37, 3), dtype=np.uint8)),
              torch.from_numpy(rng.integers(0, 256, (3, 45, 60), dtype=np.uint8)),
              torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)]
    for image in images:
        for seed in range(40):
            torch.manual_seed(seed)
            ref, ref_next = ref_train(image), torch.rand(1)
            torch.manual_seed(seed)
            out, out_next = train(image), torch.rand(1)
            assert out.shape == ref.shape == (3, 24, 24) and out.dtype == torch.float32 and out.is_contiguous()
            assert (out - ref).abs().max() < 1e-5
            assert out_next == ref_next  # the same number of draws
        assert (evaluate(image) - ref_eval(image)).abs().max() < 1e-5


def test_imagenet_config_errors(image_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.root"):
        ImageNetDataModule(root=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="exactly one"):
        ImageNetDataModule()
    dm = ImageNetDataModule(root=str(image_folder), num_classes=1000, num_workers=0)
    with pytest.raises(ConfigError, match="data.num_classes=1000 but the data has 3 classes"):
        dm.setup("fit")


def test_imagenet_from_hf_parquet_dataset(tmp_path: Path) -> None:
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as HFImage

    rng = np.random.default_rng(1)
    features = Features({"image": HFImage(), "label": ClassLabel(names=list(CLASSES))})
    for split, n in (("train", 9), ("validation", 6)):
        rows = {"image": [random_image(rng, 48, 64) for _ in range(n)], "label": [i % 3 for i in range(n)]}
        Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / f"{split}.parquet"))
    dm = ImageNetDataModule(hf_name=str(tmp_path), num_classes=3, image_size=24, batch_size=3, num_workers=0,
                            pin_memory=False, val_split="validation")
    dm.setup("fit")
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (3, 3, 24, 24) and y.tolist() == [0, 1, 2]
    assert len(dm.train_dataloader()) == 3
    bad = ImageNetDataModule(hf_name=str(tmp_path), num_classes=3, num_workers=0, val_split="validation",
                             label_column="class")
    with pytest.raises(ConfigError, match="'class' is not in the dataset"):
        bad.setup("fit")


def write_fake_cifar(root: Path, n_train_per_batch: int, n_test: int) -> np.ndarray:
    """torchvision's CIFAR-10 python layout with random images; returns the test images (N, 32, 32, 3)."""
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def dump(name: str, n: int) -> np.ndarray:
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [i % 10 for i in range(n)]}, f)
        return data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)

    for name, _ in CIFAR10.train_list:
        dump(name, n_train_per_batch)
    test = dump(CIFAR10.test_list[0][0], n_test)
    with open(folder / CIFAR10.meta["filename"], "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return test


def test_cifar10_local_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    test_images = write_fake_cifar(tmp_path, n_train_per_batch=8, n_test=12)
    # the fake files cannot match the official md5 sums: check that they exist instead
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    dm = CIFAR10DataModule(root=str(tmp_path), val_size=10, batch_size=6, num_workers=0)
    dm.setup("fit")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [30, 10, 12]
    x, y = next(iter(dm.test_dataloader()))
    ref = (test_images[:6] / 255.0 - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.2470, 0.2435, 0.2616])
    np.testing.assert_allclose(x.numpy().transpose(0, 2, 3, 1), ref, atol=1e-5)
    assert y.tolist() == [0, 1, 2, 3, 4, 5]
    xt, _ = next(iter(dm.train_dataloader()))
    assert xt.shape == (6, 3, 32, 32)
    again = CIFAR10DataModule(root=str(tmp_path), val_size=10, num_workers=0)
    again.setup("fit")
    assert dm.splits["val"].base.indices == again.splits["val"].base.indices


def test_cifar10_missing_root_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.root=.*cifar-10-batches-py.*data.download=true"):
        CIFAR10DataModule(root=str(tmp_path))
    with pytest.raises(ConfigError, match="data.root is not set"):
        CIFAR10DataModule(root=None)


def test_digits_training_items_are_zero_padded_translations_seeded_by_torch() -> None:
    from toponets_exp.data.digits import DigitsDataModule

    pad, size = 2, 16
    dm = DigitsDataModule(image_size=size, augment_shift=pad, num_workers=0)
    dm.setup("fit")
    base, train = dm.splits["train"], dm.train_dataset()
    assert len(train) == len(base)
    x0, y0 = base[0]
    padded = np.zeros((3, size + 2 * pad, size + 2 * pad), dtype=np.float32)
    padded[:, pad:pad + size, pad:pad + size] = x0.numpy()
    windows = {(dy, dx): padded[:, dy:dy + size, dx:dx + size] for dy in range(2 * pad + 1)
               for dx in range(2 * pad + 1)}
    seen = set()
    for seed in range(200):
        torch.manual_seed(seed)
        x, y = train[0]
        assert x.shape == (3, size, size) and int(y) == int(y0)
        offsets = [k for k, window in windows.items() if np.array_equal(x.numpy(), window)]
        assert offsets, "an augmented item is not a translation of the zero-padded image"
        seen.update(offsets)
        torch.manual_seed(seed)
        assert torch.equal(train[0][0], x)  # the draw is a function of torch's RNG state alone
    assert seen == set(windows)  # every shift in [-pad, pad]² occurs
    plain = DigitsDataModule(image_size=size, augment_shift=0, num_workers=0)
    plain.setup("fit")
    assert torch.equal(plain.train_dataset()[0][0], x0)
