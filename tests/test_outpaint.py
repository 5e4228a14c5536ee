"""Outpainting: extents, the step plan, border fills, bad input, and the seam metric."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neural_patch_synth import InpaintConfig, NPSError, outpaint
from neural_patch_synth.bench.methods import known_box, mirror
from neural_patch_synth.bench.metrics import seam_error
from neural_patch_synth.cli import main
from neural_patch_synth.config import COMMAND_DEFAULTS
from neural_patch_synth.io import MAX_PIXELS
from neural_patch_synth.outpaint import Extent, band_masks, parse_extend, parse_to, plan_steps
from tests.images import tiled

FAST = {"prior": "smooth", "progress": False, "em_iterations": (2, 1)}


def test_extents_in_pixels_and_percent():
    assert parse_extend("0,0,50%,0", (768, 512)) == Extent(0, 0, 384, 0)
    assert parse_extend("10, 25%,3,12.5%", (100, 40)) == Extent(10, 10, 3, 5)
    assert parse_extend((1, 2, 3, 4), (10, 10)) == Extent(1, 2, 3, 4)
    assert parse_to("101x60", (50, 40)) == Extent(25, 10, 26, 10)
    assert Extent(1, 2, 3, 4).grown((10, 20)) == (14, 26)


@pytest.mark.parametrize("spec, words", [
    ("0,0,-5,0", "negative"), ("0,0,0,0", "nothing to add"), ("1,2,3", "four values"),
    ("a,0,0,0", "neither pixels"), (f"0,0,{MAX_PIXELS},0", "150,000,000-pixel limit"),
])
def test_bad_extents(spec, words):
    with pytest.raises(NPSError, match=words):
        parse_extend(spec, (20, 10))


def test_bad_to():
    with pytest.raises(NPSError, match="smaller"):
        parse_to("10x10", (20, 10))
    with pytest.raises(NPSError, match="WxH"):
        parse_to("wide", (20, 10))


def test_recursion_adds_at_most_a_fraction_of_the_current_side():
    steps = plan_steps((100, 50), Extent(0, 0, 100, 0), 0.25)
    assert [s.right for s in steps] == [25, 31, 39, 5]
    assert len(plan_steps((100, 50), Extent(0, 0, 100, 0), 1.0)) == 1
    both = plan_steps((40, 40), Extent(20, 0, 0, 4), 0.25)
    assert [(s.left, s.bottom) for s in both] == [(10, 4), (10, 0)]


def test_band_masks_and_corners():
    new, corners = band_masks((4, 3), Extent(1, 0, 2, 1))
    assert new.shape == (4, 7) and new.sum() == 7 * 4 - 4 * 3
    assert corners.sum() == 3 and corners[3, 0] and corners[3, 5:].all()


def test_outpaint_keeps_the_photo_and_fills_from_it(device):
    truth = tiled(40, 64)
    photo = truth[:, 8:48]
    options = {**FAST, "device": device.type}
    out = outpaint(photo, "8,0,16,0", seed=3, blend="none", **options)
    assert out.shape == truth.shape and out.dtype == np.uint8
    assert np.array_equal(out[:, 8:48], photo)  # bit-identical
    assert np.abs(out.astype(float) - truth).mean() < 20  # a periodic texture goes on
    again = outpaint(photo, "8,0,16,0", seed=3, blend="none", **options)
    assert np.array_equal(out, again)


def test_outpaint_corners_pil_and_opaque_alpha():
    rgba = np.dstack([tiled(24, 32), np.full((24, 32), 255, np.uint8)])
    out = outpaint(Image.fromarray(rgba), to=(40, 30), **FAST)
    assert isinstance(out, Image.Image) and out.size == (40, 30) and out.mode == "RGBA"
    arr = np.asarray(out)
    assert np.array_equal(arr[3:27, 4:36], rgba) and (arr[..., 3] == 255).all()


def test_outpaint_refuses_transparency_and_masks():
    rgba = np.dstack([tiled(16, 16), np.full((16, 16), 255, np.uint8)])
    rgba[0, 0, 3] = 0
    with pytest.raises(NPSError, match="transparent"):
        outpaint(rgba, "0,0,4,0", **FAST)
    with pytest.raises(NPSError, match="no mask"):
        outpaint(rgba[..., :3], "0,0,4,0", mask=np.ones((16, 16), bool), **FAST)
    with pytest.raises(NPSError, match="either"):
        outpaint(rgba[..., :3], "0,0,4,0", to="20x20", **FAST)


@pytest.mark.parametrize("args, words", [
    (["--extend", "0,0,-1,0"], "negative"),
    (["--extend", f"0,0,{MAX_PIXELS},0"], "pixel limit"),
    (["--extend", "0,0,4,0", "--mask", "m.png"], "no mask"),
    ([], "either --extend"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, args, words):
    src = tmp_path / "in.png"
    Image.fromarray(tiled(16, 16)).save(src)
    assert main(["outpaint", str(src), "-o", str(tmp_path / "out.png"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nps: error:") and words in err[0]


def test_cli_outpaint_writes_the_size(tmp_path):
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(tiled(16, 24)).save(src)
    assert main(["outpaint", str(src), "-o", str(dst), "--extend", "0,0,50%,0", "--prior",
                 "smooth", "--em-iterations", "1", "-q"]) == 0
    out = np.asarray(Image.open(dst))
    assert out.shape == (16, 36, 3) and np.array_equal(out[:, :24], tiled(16, 24))


def test_known_box_and_mirror():
    mask = np.ones((6, 8), bool)
    mask[1:5, 2:6] = False
    assert known_box(mask) == (1, 5, 2, 6)
    mask[2, 3] = True
    assert known_box(mask) is None
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    mask = np.zeros((6, 8), bool)
    mask[:, 6:] = True
    out = mirror(image, mask)
    assert np.array_equal(out[:, 6], image[:, 4]) and np.array_equal(out[:, 7], image[:, 3])


def test_seam_error_by_hand():
    truth = np.zeros((2, 3, 3))
    truth[:, 2] = 0.5  # a step of 0.5 between column 1 (known) and column 2 (hole)
    mask = np.zeros((2, 3), bool)
    mask[:, 2] = True
    assert seam_error(truth, truth, mask) == 0
    fill = truth.copy()
    fill[0, 2] = 0.1  # row 0 steps 0.1 instead of 0.5 (error 0.4); the edge down to
    # row 1 lies inside the hole and does not count
    assert seam_error(fill, truth, mask) == pytest.approx(0.4 / 2 * 100)


def test_command_defaults_apply_per_command_unless_set():
    photo = tiled(24, 24)
    auto = outpaint(photo, "0,0,8,0", **FAST)
    explicit = dict(COMMAND_DEFAULTS["outpaint"])
    assert explicit["blend"] == "poisson" and explicit["guide_weight"] == 0
    assert np.array_equal(auto, outpaint(photo, "0,0,8,0", **explicit, **FAST))
    assert not np.array_equal(auto, outpaint(photo, "0,0,8,0", blend="none", **FAST))
    config = InpaintConfig(guide_weight=1.5)
    assert config.for_command("inpaint").blend == "none"
    assert config.for_command("inpaint").gradient_weight == 90
    assert config.for_command("outpaint").guide_weight == 1.5  # set by the user: kept
    assert config.for_command("outpaint").gradient_weight == 30
    assert (config.for_command("inpaint").shifts, config.for_command("outpaint").shifts) == (60, 0)
    assert config.unresolved() == ["blend", "gradient_weight", "shifts"]
    assert config.for_command("outpaint").unresolved() == []
