"""Datasets for training and evaluating models; see docs/har-data.md."""

from edgesnn.data.har import (
    L2MU_ACTIVITIES,
    SYNTHETIC_CHANNELS,
    SYNTHETIC_CLASSES,
    WISDM_ACTIVITIES,
    WISDM_CHANNELS,
    HarDataset,
    load,
    load_csv,
    load_npz,
    load_wisdm,
    save_npz,
    synthetic,
)

__all__ = [
    "HarDataset", "load", "load_npz", "save_npz", "load_csv", "load_wisdm", "synthetic",
    "WISDM_ACTIVITIES", "L2MU_ACTIVITIES", "WISDM_CHANNELS", "SYNTHETIC_CHANNELS",
    "SYNTHETIC_CLASSES",
]
