"""Where weights come from and how they are loaded.

Models are names (:mod:`n3cli.models.registry`); weights are data: safetensors + JSON
in the repository's ``weights/`` folder (bundled) or in the user store, downloaded or
imported on request with sha256 verification.
"""

from n3cli.weights.catalog import ModelInfo, available_models, choose_model
from n3cli.weights.paper import fetch_paper, import_checkpoint
from n3cli.weights.sources import PAPER_NOTICE, PAPER_SOURCES
from n3cli.weights.store import (bundled_dir, installed, load_model, save_model, store_dir,
                                 weights_sha256)

__all__ = ["ModelInfo", "available_models", "choose_model", "fetch_paper", "import_checkpoint",
           "PAPER_NOTICE", "PAPER_SOURCES", "bundled_dir", "installed", "load_model",
           "save_model", "store_dir", "weights_sha256"]
