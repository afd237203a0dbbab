"""Atomic writes: no temp debris, old file intact on failure, clear errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from n3cli.errors import ImageWriteError
from n3cli.io import Image, atomic_write, write_image


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_success_replaces_and_uses_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_write(target, lambda tmp: open(tmp, "wb").write(b"new"))
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 != 0o600 or os.umask(0o022) == 0o177
    assert os.listdir(target.parent) == ["out.bin"]


def test_unwritable_target_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    img = Image(pixels=np.zeros((4, 4, 1), np.float32))
    with pytest.raises(ImageWriteError, match="cannot create directory") as info:
        write_image(blocker / "out.png", img)
    assert "out.png" in info.value.one_line()
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageWriteError, match="is a directory"):
        write_image(tmp_path / "d.png", img)
