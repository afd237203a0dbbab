"""Running models on images: devices, precision, padding, tiling (:func:`restore_image`)."""

from n3cli.engine.device import resolve_device
from n3cli.engine.runner import estimate_seconds, restore_image, sigma_conditions

__all__ = ["resolve_device", "estimate_seconds", "restore_image", "sigma_conditions"]
