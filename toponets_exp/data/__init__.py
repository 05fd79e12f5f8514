"""LightningDataModules and stimulus sets."""

from toponets_exp.data.cifar10 import CIFAR10DataModule
from toponets_exp.data.digits import DigitsDataModule
from toponets_exp.data.imagenet import ImageNetDataModule
from toponets_exp.data.text import EmbeddedTextDataModule
from toponets_exp.data.text_hf import HFTextDataModule

__all__ = ["CIFAR10DataModule", "DigitsDataModule", "EmbeddedTextDataModule", "HFTextDataModule",
           "ImageNetDataModule"]
