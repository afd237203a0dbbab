"""Reading and writing images faithfully (bit depth, channels, alpha, metadata), atomic
writes, and planning batches of files. Knows nothing about networks."""

from n3cli.io.atomic import atomic_write, install_signal_cleanup
from n3cli.io.image import DEFAULT_MAX_PIXELS, Image, Metadata
from n3cli.io.reader import decode_image, read_image
from n3cli.io.writer import JPEG_QUALITY, quantize, write_image

__all__ = ["atomic_write", "install_signal_cleanup", "DEFAULT_MAX_PIXELS", "Image", "Metadata",
           "decode_image", "read_image", "JPEG_QUALITY", "quantize", "write_image"]
