"""Scenario files: the structs (``model``) and the TOML loader (``loader``)."""

from .loader import LoadedScenario, dump_scenario, load_scenario, loads_scenario, locate_key
from .model import *  # noqa: F403
from .model import __all__ as _model_all

__all__ = [*_model_all, "LoadedScenario", "dump_scenario", "load_scenario", "loads_scenario",
           "locate_key"]
