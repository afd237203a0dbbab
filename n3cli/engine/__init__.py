"""Running models on images: devices, precision, padding, tiling."""

from n3cli.engine.device import resolve_device
from n3cli.engine.runner import denoise_array, denoise_image, estimate_seconds, run_planes

__all__ = ["resolve_device", "denoise_array", "denoise_image", "estimate_seconds", "run_planes"]
