"""Entry point: python run.py [group=option ...] [key=value ...] (Hydra; -m for multirun sweeps)."""

import hydra
import lightning  # noqa: F401  imported before Hydra's logging set-up, which then replaces its console handler
from omegaconf import DictConfig

from toponets_exp.tasks import run  # importing the package registers the configs' resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Compose the config and run its task."""
    run(cfg)


if __name__ == "__main__":
    main()
