"""LightningDataModules and stimulus sets."""

from toponets_exp.data.digits import DigitsDataModule
from toponets_exp.data.text import EmbeddedTextDataModule
from toponets_exp.data.text_hf import HFTextDataModule

__all__ = ["DigitsDataModule", "EmbeddedTextDataModule", "HFTextDataModule"]
