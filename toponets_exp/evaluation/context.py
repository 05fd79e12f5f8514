"""What every analysis of one evaluation shares: the context, progress lines, layer checks, JSON values."""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.resume.stop import stop_if_caught
from toponets_exp.topo import TopoLayer

log = logging.getLogger(__name__)
Section = dict[str, dict[str, Any]]  # per topo layer name: what one analysis measured there


@dataclass
class EvalContext:
    """Everything the analyses of one evaluation share."""

    net: nn.Module
    layers: Sequence[TopoLayer]
    data: L.LightningDataModule | None   # the task's data, None when it does not fit the model
    data_misfit: str | None              # why not
    settings: EvalSettings
    model_eval: dict[str, Any]           # model.eval.* (what is specific to the model)
    figures: Path
    device: torch.device
    tokenizer: Any = None                # language: encodes the stimuli (data.tokenizer.TextTokenizer)
    no_classifier: str | None = None     # why the model's outputs are no class scores of the data (a trunk)
    skipped: dict[str, str] = field(default_factory=dict)  # analysis -> why it did not run
    notes: list[str] = field(default_factory=list)          # what the report says of how a value was obtained

    def skip(self, analysis: str, needs: str) -> None:
        """Record an analysis left out because the task's data does not fit the model (or it has no classifier)."""
        why = (self.no_classifier if self.data is not None
               else f"the task's data does not fit the model ({self.data_misfit})")
        self.skipped[analysis] = f"needs {needs}; {why}"
        log.warning("Skipped %s: %s", analysis, self.skipped[analysis])

    def note(self, text: str | None) -> None:
        """Record a note for report.json (once per evaluation, logged at info level); None: nothing to say."""
        if text is not None and text not in self.notes:
            self.notes.append(text)
            log.info("Note (report.json): %s", text)


def check_layers(net: nn.Module, names: Sequence[str]) -> None:
    """eval.layers / eval.predictivity_layers must name modules of the model."""
    modules = dict(net.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        close = difflib.get_close_matches(unknown[0], [n for n in modules if n], n=5, cutoff=0.5)
        raise ConfigError(f"eval.layers / eval.predictivity_layers name {unknown[0]!r}, which is not a module of "
                          f"{type(net).__name__}" + (f"; closest: {', '.join(close)}" if close else ""))


def check_model_settings(settings: EvalSettings, net: nn.Module, layers: Sequence[TopoLayer]) -> None:
    """The eval settings that name the model's layers, checked against the model before it is evaluated (and, after
    training, before the first step): eval.layers and eval.predictivity_layers are its modules, the predictivity
    layers are recorded (topo layers or eval.layers), a language evaluation's eval.integration_layer is a topo layer."""
    check_layers(net, settings.layers + settings.predictivity_layers)
    topo = [layer.name for layer in layers]
    recorded = topo + [n for n in settings.layers if n not in topo]
    unrecorded = [name for name in settings.predictivity_layers if name not in recorded]
    if settings.kind == "vision" and unrecorded:
        raise ConfigError(f"eval.predictivity_layers names {unrecorded[0]!r}, which is not recorded; use topo layers "
                          f"or add it to eval.layers (recorded: {', '.join(recorded)})")
    name = settings.integration_layer
    if settings.kind == "language" and name is not None and name not in topo:
        raise ConfigError(f"eval.integration_layer={name!r} is not a topo layer; use one of {', '.join(topo)}")


def on_sheets(layers: Sequence[TopoLayer], acts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Recorded responses (..., units) with each topo layer's units in sheet order (a placed layer's reordered)."""
    by_name = {layer.name: layer for layer in layers}
    return {name: by_name[name].on_sheet(a, dim=-1) if name in by_name else a for name, a in acts.items()}


def stop_point() -> None:
    """A safe point of the evaluation: inside a Slurm job, stop here once a signal has come (resume.stop)."""
    stop_if_caught("the evaluation")


def phase(what: str, *args: Any) -> None:
    """One progress line as an evaluation phase starts (after a stop point)."""
    stop_point()
    log.info("Evaluation: " + what, *args)


def jsonable(value: Any) -> Any:
    """Numbers, arrays and dataclasses as JSON-ready Python (NaN/inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return jsonable(np.asarray(value).tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def file_name(layer: str) -> str:
    """A layer name as a file-name part."""
    return layer.replace(".", "_")


def merge_layers(per_layer: Section, section: Section) -> None:
    """Add one analysis's per-layer section to the report's per-layer entries."""
    for name, values in section.items():
        per_layer.setdefault(name, {}).update(values)
