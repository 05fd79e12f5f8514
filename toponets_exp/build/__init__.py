"""Build a run from the composed config: every setting checked and every object made before the first step."""

from toponets_exp.build.data import build_datamodule, check_model_data
from toponets_exp.build.loggers import build_loggers
from toponets_exp.build.module import build_module, build_optim
from toponets_exp.build.run import Plan, Run, build_run, output_dir, overrides, plan_run, seed_and_check
from toponets_exp.build.topo import build_topo, select_topo_layers

__all__ = ["Plan", "Run", "build_datamodule", "build_loggers", "build_module", "build_optim", "build_run", "build_topo",
           "check_model_data", "output_dir", "overrides", "plan_run", "seed_and_check", "select_topo_layers"]
