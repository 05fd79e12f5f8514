"""lightning.Trainer's own arguments, with Lightning's defaults, as `trainer=lightning`: the base of
conf/trainer/default.yaml, which then lists only this project's changes."""

from __future__ import annotations

import inspect
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.object_type import ObjectType

BUILT_BY_THE_RUN = ("logger", "callbacks", "plugins", "default_root_dir")  # toponets_exp.tasks.train passes these


def lightning_defaults() -> dict[str, Any]:
    """Every lightning.Trainer argument a config may set, with its default, and the Trainer as `_target_`."""
    from lightning.pytorch import Trainer

    parameters = inspect.signature(Trainer.__init__).parameters.values()
    return {"_target_": "lightning.pytorch.Trainer",
            **{p.name: p.default for p in parameters
               if p.kind is p.KEYWORD_ONLY and p.name not in BUILT_BY_THE_RUN}}


def register() -> None:
    """Store the `trainer=lightning` option in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    if store.get_type("trainer") is not ObjectType.GROUP or "lightning.yaml" not in store.list("trainer"):
        store.store(group="trainer", name="lightning", node=lightning_defaults())
