"""TopoLoss: sheet geometry, the loss, τ schedules and the Lightning callback."""

from toponets_exp.topo.callback import TopoLossCallback
from toponets_exp.topo.blur import blur_matrix
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.topoloss import TopoLoss, layer_loss
from toponets_exp.topo.schedule import Chained, Constant, CosineDecay, LinearWarmup, Schedule
from toponets_exp.topo.selection import select_layers
from toponets_exp.topo.sheet import sheet_shape, unit_matrix
from toponets_exp.topo.sheet_images import TopoSheetImages

__all__ = [
    "Chained", "Constant", "CosineDecay", "LinearWarmup", "Schedule", "TopoLayer", "TopoLoss", "TopoLossCallback",
    "TopoSheetImages",
    "blur_matrix", "layer_loss", "select_layers", "sheet_shape", "unit_matrix",
]
