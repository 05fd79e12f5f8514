"""Backbone builders."""

from toponets_exp.models.resnet import resnet18, resnet50

__all__ = ["resnet18", "resnet50"]
