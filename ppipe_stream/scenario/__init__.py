"""Scenario files: the structs (``model``) and the TOML loader (``loader``)."""

from .model import *  # noqa: F403
from .model import __all__ as _model_all

__all__ = list(_model_all)
