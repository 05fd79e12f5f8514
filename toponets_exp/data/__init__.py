"""LightningDataModules and stimulus sets."""

from toponets_exp.data.digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
