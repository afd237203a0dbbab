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


def test_a_short_write_fails_the_output(tmp_path, monkeypatch):
    """A full disk while a JPEG is written is an error, not a truncated file kept as done
    (Pillow's encoders ignore a short write to a file; the writer writes the bytes itself)."""
    import builtins

    def full_disk(path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)
        if "w" in mode:
            def write(data):
                raise OSError(28, "No space left on device")
            f.write = write
        return f

    monkeypatch.setattr("n3cli.io.writer.open", full_disk, raising=False)
    img = Image(pixels=np.zeros((8, 8, 3), np.float32))
    for name in ("a.jpg", "a.webp", "a.bmp"):
        with pytest.raises(ImageWriteError, match="no space left on device"):
            write_image(tmp_path / name, img)
    assert list(tmp_path.iterdir()) == []


def test_the_longest_legal_name_can_be_written(tmp_path):
    name = "é" * 125 + ".png"  # 254 bytes
    write_image(tmp_path / name, Image(pixels=np.zeros((4, 4, 1), np.float32)))
    assert [p.name for p in tmp_path.iterdir()] == [name]
