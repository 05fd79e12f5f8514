"""Runs that survive interruption: atomic run checkpoints, RNG state, preemption signals, resuming a run directory."""

from toponets_exp.resume.checkpoint import RNGState, RunCheckpoint
from toponets_exp.resume.preemption import Preemption
from toponets_exp.resume.run_dir import reset_metrics, resume_point

__all__ = ["Preemption", "RNGState", "RunCheckpoint", "reset_metrics", "resume_point"]
