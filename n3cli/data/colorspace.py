"""BT.601 YCbCr as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` define it (the SR protocol's).

RGB and YCbCr in [0, 1] floats: Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, so Y
lies in [16/255, 235/255]; Cb, Cr in [16/255, 240/255]. The inverse is exact in float.
"""

from __future__ import annotations

import numpy as np

_M = np.array([[65.481, 128.553, 24.966],
               [-37.797, -74.203, 112.0],
               [112.0, -93.786, -18.214]]) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_M_INV = np.linalg.inv(_M)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB in [0, 1] -> H x W x 3 YCbCr in [0, 1], float32 (a 12-MP image's
    conversion must not cost float64 temporaries of 300 MB)."""
    return np.asarray(rgb, np.float32) @ _M.T.astype(np.float32) + _OFFSET.astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_ycbcr` (not clipped), float32."""
    return (np.asarray(ycc, np.float32) - _OFFSET.astype(np.float32)) @ _M_INV.T.astype(np.float32)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """The BT.601 luminance of H x W x 3 RGB in [0, 1], H x W float64 in [0, 1]."""
    return np.asarray(rgb, np.float64) @ _M[0] + _OFFSET[0]
