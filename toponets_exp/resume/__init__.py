"""Runs that survive interruption: the run state in last.ckpt (one callback), Slurm, resuming a run directory."""

from toponets_exp.resume.run_dir import reset_metrics, resume_point
from toponets_exp.resume.run_state import RunState

__all__ = ["RunState", "reset_metrics", "resume_point"]
