"""Scenario files: the structs (``model``) and the TOML loader (``loader``)."""

from . import model
from .loader import LoadedScenario, dump_scenario, load_scenario, loads_scenario, locate_key
from .model import *  # noqa: F403

__all__ = ["LoadedScenario", "dump_scenario", "load_scenario", "loads_scenario", "locate_key"]
__all__ += model.__all__
