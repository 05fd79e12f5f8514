"""Every conf/model × conf/data pair either fits or is refused in one line naming the data options that fit."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from toponets_exp.errors import ConfigError
from toponets_exp.build import check_model_data

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
LANGUAGE = {"gpt_neo_125m", "nanogpt"}
TEXT = {"text_embedded", "hf_text", "openwebtext", "fineweb_edu", "wikipedia"}


def composed(model: str, data: str):
    """The run's config for model= and data=, with Hydra's runtime choices set as in a run."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model}", f"data={data}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_the_matrix_covers_every_option():
    assert len(MODELS) == 6 and len(DATA) == 8 and LANGUAGE <= set(MODELS) and TEXT <= set(DATA)


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_data_pair_fits_or_names_what_fits(model: str, data: str):
    fits = (model in LANGUAGE) == (data in TEXT)
    if fits:
        check_model_data(composed(model, data))
        return
    with pytest.raises(ConfigError) as err:
        check_model_data(composed(model, data))
    message = str(err.value)
    assert message.startswith(f"model={model} reads {'token ids' if model in LANGUAGE else 'labelled images'}, "
                              f"which data={data} does not give")
    named = set(message.split("use data=")[1].split(" | "))
    assert named == (TEXT if model in LANGUAGE else set(DATA) - TEXT)
