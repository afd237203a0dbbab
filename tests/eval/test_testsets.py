"""Test-set layout and the paper's gray conversion."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import hashlib

from n3cli.data.testsets import (PAPER_GRAY_MATRIX, dataset_spec, libpng_rgb_to_gray, list_images,
                                 load_test_image, to_gray_paper)
from n3cli.errors import UsageError


def test_paper_gray_formula():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], np.uint8)
    gray = np.asarray(to_gray_paper(Image.fromarray(rgb)))
    expected = np.rint(rgb @ np.array(PAPER_GRAY_MATRIX[:3]))  # 76.2, 149.7, 29.1, 254.97, 18.1
    assert gray.tolist() == expected.astype(np.uint8).tolist() == [[76, 150, 29, 255, 18]]
    already = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert np.array_equal(np.asarray(to_gray_paper(already)), np.asarray(already))


def test_layout_and_conversion(tmp_path):
    (tmp_path / "CBSD68").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    for name in ("2.png", "10.png", "1.png"):
        Image.fromarray(rgb).save(tmp_path / "CBSD68" / name)
    files = list_images(dataset_spec("bsd68"), tmp_path)
    assert [p.name for p in files] == ["1.png", "10.png", "2.png"]  # sorted file names
    gray = load_test_image(files[0], dataset_spec("bsd68"))
    color = load_test_image(files[0], dataset_spec("cbsd68"))
    assert gray.shape == (9, 7, 1) and color.shape == (9, 7, 3)
    assert np.array_equal(color, rgb)
    assert np.array_equal(gray[..., 0], np.asarray(Image.fromarray(rgb).convert("L", PAPER_GRAY_MATRIX)))
    with pytest.raises(UsageError, match="no bsd68 images"):
        list_images(dataset_spec("bsd68", "kair"), tmp_path)  # kair reads BSD68/, absent here
    with pytest.raises(UsageError, match="unknown dataset"):
        dataset_spec("kodak")



def test_data_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "Set12").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "Set12" / "01.png")
    monkeypatch.setenv("N3_DATA", str(tmp_path))
    assert [p.name for p in list_images(dataset_spec("set12"))] == ["01.png"]
    monkeypatch.setenv("N3_DATA", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="no set12 images"):
        list_images(dataset_spec("set12"))


def test_libpng_gray_by_hand():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200], [10, 20, 30]]], np.uint8)
    # (9797 R + 19234 G + 3737 B) >> 15, truncated; gray pixels unchanged.
    assert libpng_rgb_to_gray(rgb).tolist() == [[76, 149, 29, 200, 18]]


#: sha256 of ``cv2.imread("img_001_SRF_4_HR.png", cv2.IMREAD_GRAYSCALE).tobytes()`` (644 x 1024),
#: computed once with opencv-python-headless 5.0.0.93 (the kair protocol's reader).
OPENCV_IMG001_GRAY = "6ca8087c837c470f1bc3caf9b953349ced16923c30a4f1d091ee9948fed509ee"


def test_kair_urban100_gray_matches_opencv(shared_file):
    path = shared_file("datasets/Urban100/image_SRF_4/img_001_SRF_4_HR.png")
    gray = load_test_image(path, dataset_spec("urban100", "kair"))
    assert gray.shape == (644, 1024, 1)
    assert hashlib.sha256(gray[..., 0].tobytes()).hexdigest() == OPENCV_IMG001_GRAY
    paper = load_test_image(path, dataset_spec("urban100", "paper"))
    assert not np.array_equal(paper, gray)  # the two protocols really differ


def test_validation_sets_leave_out_the_test_images(tmp_path):
    val = tmp_path / "BSDS500" / "data" / "images" / "val"
    val.mkdir(parents=True)
    rgb = np.random.default_rng(1).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    for stem in ("100", "200", "300"):
        Image.fromarray(rgb).save(val / f"{stem}.jpg")
    with pytest.raises(UsageError, match="leaves out the CBSD68 test images"):
        list_images(dataset_spec("val32"), tmp_path)  # no list of test images: refused
    (tmp_path / "CBSD68").mkdir()
    Image.fromarray(rgb).save(tmp_path / "CBSD68" / "200.png")
    for name, channels in (("val32", 1), ("cval32", 3)):
        files = list_images(dataset_spec(name), tmp_path)
        assert [p.stem for p in files] == ["100", "300"]
        assert load_test_image(files[0], dataset_spec(name)).shape == (8, 6, channels)


def test_shared_val32_is_disjoint_from_cbsd68(shared_dir):
    files = list_images(dataset_spec("val32"), shared_dir / "datasets")
    tests = {p.stem for p in (shared_dir / "datasets" / "CBSD68").glob("*.png")}
    assert len(files) == 32 and len(tests) == 68 and not tests & {p.stem for p in files}
