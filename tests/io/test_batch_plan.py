"""Batch planning: names, mirroring, what is skipped, what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from n3cli.errors import UsageError
from n3cli.io.batch import PlanOptions, plan_batch


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def pairs(plan):
    return [(i.src.name, str(i.dst), i.action) for i in plan.items]


def test_default_output_next_to_input_and_extension_rules(tmp_path):
    a, b, c = touch(tmp_path / "a.PNG"), touch(tmp_path / "b.JPG"), touch(tmp_path / "c.gif")
    plan = plan_batch([a, b, c], PlanOptions())
    assert [i.dst.name for i in plan.items] == ["a_denoised.PNG", "b_denoised.JPG", "c_denoised.png"]
    plan = plan_batch([b], PlanOptions(fmt="png", suffix="-clean"))
    assert plan.items[0].dst.name == "b-clean.png"


def test_folder_walk_skips_and_mirrors(tmp_path):
    src = tmp_path / "in"
    for rel in ["x.png", "sub/y.tif", "sub/deeper/z.jpg", ".hidden.png", ".DS_Store", "Thumbs.db",
                "notes.txt", "x_denoised.png", "cam.NEF", ".git/obj.png", "sub/.x.png.abc.tmp"]:
        touch(src / rel)
    flat = plan_batch([src], PlanOptions())
    assert [i.src.name for i in flat.items] == ["x.png"]
    plan = plan_batch([src], PlanOptions(output=tmp_path / "out", recursive=True))
    assert sorted(str(i.dst.relative_to(tmp_path / "out")) for i in plan.items) == \
        ["sub/deeper/z_denoised.jpg", "sub/y_denoised.tif", "x_denoised.png"]
    reasons = {p.name: why for p, why in plan.ignored}
    assert reasons[".DS_Store"].startswith("hidden") and reasons["Thumbs.db"].startswith("hidden")
    assert reasons["notes.txt"] == "not an image"
    assert "earlier run" in reasons["x_denoised.png"]
    assert "only n3 denoise" in reasons["cam.NEF"]
    assert "obj.png" not in reasons  # hidden folders are not entered
    raw = plan_batch([src], PlanOptions(raw=True))  # n3 denoise: raws are inputs, DNG out
    assert [(i.src.name, i.dst.name) for i in raw.items] == [("cam.NEF", "cam_denoised.dng"),
                                                             ("x.png", "x_denoised.png")]


def test_output_folder_inside_input_is_not_walked(tmp_path):
    touch(tmp_path / "a.png")
    touch(tmp_path / "clean" / "a.png")  # result of an earlier run with --suffix ''
    plan = plan_batch([tmp_path], PlanOptions(output=tmp_path / "clean", suffix="", recursive=True))
    assert [(i.src.name, i.action) for i in plan.items] == [("a.png", "skip")]


def test_existing_outputs_resume_overwrite_and_in_place(tmp_path):
    a = touch(tmp_path / "a.png")
    touch(tmp_path / "a_denoised.png")
    assert plan_batch([a], PlanOptions()).items[0].action == "skip"
    assert plan_batch([a], PlanOptions(overwrite=True)).items[0].action == "run"
    item = plan_batch([a], PlanOptions(in_place=True)).items[0]
    assert item.dst == a and item.action == "run"
    with pytest.raises(UsageError, match="in-place"):
        plan_batch([a], PlanOptions(in_place=True, fmt="png"))


def test_output_equal_to_an_input_is_refused(tmp_path):
    a = touch(tmp_path / "a.png")
    item = plan_batch([a], PlanOptions(output=a, overwrite=True)).items[0]
    assert item.action == "fail" and "overwrite an input" in item.reason
    item = plan_batch([a], PlanOptions(suffix="", overwrite=True)).items[0]
    assert item.action == "fail"


def test_collisions_and_duplicates(tmp_path):
    a, b = touch(tmp_path / "a.png"), touch(tmp_path / "a.jpg")
    plan = plan_batch([a, b], PlanOptions(fmt="png"))
    assert [i.action for i in plan.items] == ["run", "fail"]
    assert "same output" in plan.items[1].reason
    plan = plan_batch([a, a, tmp_path], PlanOptions())
    assert sorted(i.src.name for i in plan.items) == ["a.jpg", "a.png"]


def test_usage_errors(tmp_path):
    a, b = touch(tmp_path / "a.png"), touch(tmp_path / "b.png")
    with pytest.raises(UsageError, match="no such file"):
        plan_batch([tmp_path / "missing.png"], PlanOptions())
    with pytest.raises(UsageError, match="names one file"):
        plan_batch([a, b], PlanOptions(output=tmp_path / "x" / "out.png"))
    with pytest.raises(UsageError, match="cannot write .gif"):
        plan_batch([a], PlanOptions(output=tmp_path / "x.gif"))
    with pytest.raises(UsageError, match="disagree"):
        plan_batch([a], PlanOptions(output=tmp_path / "x.png", fmt="tiff"))
    with pytest.raises(UsageError, match="only n3 denoise reads raw files"):
        plan_batch([touch(tmp_path / "r.KDC")], PlanOptions())
    raw = plan_batch([tmp_path / "r.KDC"], PlanOptions(raw=True))  # n3 denoise: a DNG out
    assert raw.items[0].dst.name == "r_denoised.dng"
    assert plan_batch([tmp_path / "r.KDC"], PlanOptions(raw=True, output=tmp_path / "o.dng")).items[0].dst.name == "o.dng"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no images"):
        plan_batch([empty], PlanOptions())


def test_output_file_or_folder(tmp_path):
    a = touch(tmp_path / "a.png")
    assert plan_batch([a], PlanOptions(output=tmp_path / "r.tif")).items[0].dst == tmp_path / "r.tif"
    assert plan_batch([a], PlanOptions(output=tmp_path / "res")).items[0].dst == \
        tmp_path / "res" / "a_denoised.png"
    assert plan_batch([a], PlanOptions(output=tmp_path / "res", suffix="")).items[0].dst == \
        tmp_path / "res" / "a.png"
    # A trailing separator makes a folder of any name (Path() would drop it).
    assert plan_batch([a], PlanOptions(output=f"{tmp_path / 'n.png'}/")).items[0].dst == \
        tmp_path / "n.png" / "a_denoised.png"
    touch(tmp_path / "f.png")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        plan_batch([a], PlanOptions(output=f"{tmp_path / 'f.png'}/"))
    # Image formats n3 does not write are refused rather than taken for folder names.
    with pytest.raises(UsageError, match="cannot write .heic"):
        plan_batch([a], PlanOptions(output=tmp_path / "x.heic"))
    assert not (tmp_path / "x.heic").exists()


def test_side_outputs_obey_the_output_rules(tmp_path):
    """--preview sheets and --render renderings never replace an input, an existing file or
    each other (they were written without any check)."""
    a, b = touch(tmp_path / "a.png"), touch(tmp_path / "b.png")
    plan = plan_batch([a], PlanOptions(preview=True))
    assert plan.items[0].extras == [tmp_path / "a_denoised_preview.png"]
    # The preview of one input would be another input.
    sheet = touch(tmp_path / "b_denoised_preview.png")
    plan = plan_batch([b, sheet], PlanOptions(preview=True))
    assert plan.items[0].action == "fail" and "would overwrite an input" in plan.items[0].reason
    # A file of the user's where the preview goes: refused, kept; --overwrite replaces it.
    plan = plan_batch([b], PlanOptions(preview=True))
    assert plan.items[0].action == "fail" and "b_denoised_preview.png exists" in plan.items[0].reason
    assert plan_batch([b], PlanOptions(preview=True, overwrite=True)).items[0].action == "run"
    # An existing output skips the item and says the preview is not written either.
    touch(tmp_path / "a_denoised.png")
    item = plan_batch([a], PlanOptions(preview=True)).items[0]
    assert item.action == "skip" and "a_denoised_preview.png is not written either" in item.reason


def test_raws_go_to_dng_and_only_raws(tmp_path):
    cam, img = touch(tmp_path / "a.NEF"), touch(tmp_path / "a.png")
    plan = plan_batch([tmp_path], PlanOptions(raw=True, render="png"))
    by_src = {i.src.name: i for i in plan.items}
    assert by_src["a.NEF"].raw and not by_src["a.png"].raw
    assert by_src["a.NEF"].dst.name == "a_denoised.dng" and by_src["a.NEF"].extras == [tmp_path / "a_denoised.png"]
    # The rendering of the raw and the output of the image would be the same file.
    assert by_src["a.png"].action == "fail" and "same output as" in by_src["a.png"].reason
    tiff = plan_batch([tmp_path], PlanOptions(raw=True, render="tiff"))
    assert [i.action for i in tiff.items] == ["run", "run"]  # a_denoised.tif beside a_denoised.png
    item = plan_batch([img], PlanOptions(raw=True, output=tmp_path / "x.dng")).items[0]
    assert item.action == "fail" and "not a camera raw" in item.reason
    item = plan_batch([cam], PlanOptions(raw=True, output=tmp_path / "x.jpg")).items[0]
    assert item.action == "fail" and "its output is a DNG" in item.reason
    # An image name of the raw's output asks for the rendering instead of the DNG: no extras,
    # and --render on top of it is refused rather than written over the same file.
    item = plan_batch([cam], PlanOptions(raw=True, output=tmp_path / "x.TIFF")).items[0]
    assert item.action == "run" and item.extras == []
    item = plan_batch([cam], PlanOptions(raw=True, output=tmp_path / "x.png", render="png")).items[0]
    assert item.action == "fail" and "drop one of them" in item.reason
    # --raw: every input must be a raw; the image fails at planning, the raw still runs.
    only = plan_batch([tmp_path], PlanOptions(raw=True, raw_only=True, render="tiff"))
    assert [(i.src.name, i.action) for i in only.items] == [("a.NEF", "run"), ("a.png", "fail")]
    assert "a.png: not a camera raw file (--raw)" in only.items[1].reason


def test_upscale_walks_skip_the_outputs_of_every_scale(tmp_path):
    for name in ("g.png", "g_x2.png", "g_x4.tif"):
        touch(tmp_path / name)
    plan = plan_batch([tmp_path], PlanOptions(suffix="_x3", earlier_suffixes=("_x2", "_x3", "_x4")))
    assert [(i.src.name, i.dst.name) for i in plan.items] == [("g.png", "g_x3.png")]
    reasons = {p.name: why for p, why in plan.ignored}
    assert "ends in _x2" in reasons["g_x2.png"] and "ends in _x4" in reasons["g_x4.tif"]


def test_a_folder_written_onto_itself_is_a_usage_error(tmp_path):
    for name in ("a.png", "b.png"):
        touch(tmp_path / name)
    with pytest.raises(UsageError, match="every output would overwrite its input"):
        plan_batch([tmp_path], PlanOptions(output=tmp_path, suffix=""))
    # Only some outputs hit an input: those items fail, the others run.
    touch(tmp_path / "a_x.png")
    plan = plan_batch([tmp_path / "a.png", tmp_path / "a_x.png"], PlanOptions(suffix="_x"))
    assert [i.action for i in plan.items] == ["fail", "run"]


def test_raws_are_never_replaced_and_their_dngs_are_outputs(tmp_path):
    cam, img = touch(tmp_path / "b.KDC"), touch(tmp_path / "a.png")
    plan = plan_batch([tmp_path], PlanOptions(raw=True, in_place=True))
    by_src = {i.src.name: i for i in plan.items}
    assert by_src["a.png"].action == "run" and by_src["a.png"].dst == img  # images: replaced, as asked
    assert by_src["b.KDC"].action == "fail" and "never replaces a raw" in by_src["b.KDC"].reason
    assert cam.exists()
    # A rerun of a raw folder resumes: the DNGs it wrote are outputs, not new inputs.
    touch(tmp_path / "b_denoised.dng")
    plan = plan_batch([tmp_path], PlanOptions(raw=True))
    assert [(i.src.name, i.action) for i in plan.items] == [("a.png", "run"), ("b.KDC", "skip")]
    assert "earlier run" in dict((p.name, why) for p, why in plan.ignored)["b_denoised.dng"]


def test_names_the_file_system_refuses_fail_alone(tmp_path):
    """An output name over the 255-byte limit is that item's failure, not the batch's."""
    long_src = touch(tmp_path / ("a" * 247 + ".png"))
    ok = touch(tmp_path / "b.png")
    plan = plan_batch([tmp_path], PlanOptions())
    by_name = {i.src.name: i for i in plan.items}
    assert by_name[long_src.name].action == "fail" and "more than a file name holds" in by_name[long_src.name].reason
    assert by_name[ok.name].action == "run"
    with pytest.raises(UsageError, match="file name too long"):
        plan_batch([ok], PlanOptions(output=tmp_path / ("c" * 300 + ".png")))


def test_an_unreadable_folder_in_a_walk_is_a_failed_item(tmp_path, monkeypatch):
    touch(tmp_path / "in" / "ok" / "a.png")
    touch(tmp_path / "in" / "locked" / "b.png")
    real = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    plan = plan_batch([tmp_path / "in"], PlanOptions(recursive=True))
    got = {i.src.name: (i.action, i.reason) for i in plan.items}
    assert got["a.png"][0] == "run"
    assert got["locked"] == ("fail", "cannot read this folder (permission denied)")


def test_standard_input_and_output_are_refused(tmp_path):
    a = touch(tmp_path / "a.png")
    with pytest.raises(UsageError, match="standard input"):
        plan_batch(["-"], PlanOptions())
    with pytest.raises(UsageError, match="standard output"):
        plan_batch([a], PlanOptions(output="-"))
