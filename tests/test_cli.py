"""End to end: the ``nps`` command as a user runs it."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from neural_patch_synth import InpaintConfig
from neural_patch_synth.cli import build_parser, engine_config, main
from tests.images import textured


@pytest.fixture()
def photo(tmp_path):
    img_path, mask_path = tmp_path / "in.png", tmp_path / "mask.png"
    Image.fromarray(textured(64, 80)).save(img_path)
    mask = np.zeros((64, 80), np.uint8)
    mask[20:40, 25:55] = 255
    Image.fromarray(mask).save(mask_path)
    return img_path, mask_path


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neural_patch_synth.cli", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300)


def test_inpaint_end_to_end(photo, tmp_path, vgg_weights):
    img_path, mask_path = photo
    out = tmp_path / "out.jpg"
    proc = run("inpaint", str(img_path), "--mask", str(mask_path), "-o", str(out),
               "--vgg-weights", str(vgg_weights), "--prior", "smooth", "--em-iterations", "2,1",
               "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "voting" in proc.stderr  # the progress bar
    result = Image.open(out)
    assert result.size == (80, 64) and result.format == "JPEG"
    png = tmp_path / "out.png"
    quiet = run("inpaint", str(img_path), "--mask", str(mask_path), "-o", str(png), "-q",
                "--vgg-weights", str(vgg_weights), "--prior", "smooth", "--method", "optimise",
                "--iterations", "3")
    assert quiet.returncode == 0 and quiet.stderr == ""
    src, res = np.asarray(Image.open(img_path)), np.asarray(Image.open(png))
    hole = np.asarray(Image.open(mask_path)) > 0
    assert np.array_equal(src[~hole], res[~hole])


def test_refuses_to_overwrite(photo, tmp_path):
    img_path, mask_path = photo
    out = tmp_path / "exists.png"
    out.write_bytes(b"precious")
    proc = run("inpaint", str(img_path), "--mask", str(mask_path), "-o", str(out),
               "--prior-only", "--prior", "smooth")
    assert proc.returncode == 2 and "exists" in proc.stderr
    assert out.read_bytes() == b"precious"
    assert main(["inpaint", str(img_path), "--mask", str(mask_path), "-o", str(out), "-q",
                 "--prior-only", "--prior", "smooth", "--overwrite"]) == 0
    assert Image.open(out).size == (80, 64)


@pytest.mark.parametrize("case, message", [
    ("missing", "image not found"),
    ("corrupt", "could not be decoded"),
    ("mask_size", "mask is 10x10 but the image is 80x64"),
    ("empty", "mask is empty"),
    ("full", "covers the whole image"),
    ("no_mask", "no mask given"),
    ("bad_ext", "unknown output extension"),
])
def test_bad_input_is_one_line_and_nonzero(photo, tmp_path, case, message, capsys):
    img_path, mask_path = photo
    out = tmp_path / "o.png"
    if case == "missing":
        img_path = tmp_path / "nope.png"
    elif case == "corrupt":
        img_path = tmp_path / "corrupt.png"
        img_path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif case == "mask_size":
        Image.new("L", (10, 10), 255).save(mask_path)
    elif case in ("empty", "full"):
        Image.new("L", (80, 64), 0 if case == "empty" else 255).save(mask_path)
    elif case == "bad_ext":
        out = tmp_path / "o.xyz"
    args = ["inpaint", str(img_path), "-o", str(out), "--prior-only", "--prior", "smooth", "-q"]
    if case != "no_mask":
        args += ["--mask", str(mask_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_rgba_grayscale_and_16bit_inputs(tmp_path):
    rgba = np.dstack([textured(32, 40), np.full((32, 40), 255, np.uint8)])
    rgba[8:20, 10:25, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert main(["inpaint", str(tmp_path / "a.png"), "-o", str(tmp_path / "a_out.png"),
                 "--prior-only", "--prior", "smooth", "-q"]) == 0
    out = np.asarray(Image.open(tmp_path / "a_out.png"))
    assert out.shape == (32, 40, 4) and (out[..., 3] == 255).all()

    gray = textured(32, 40)[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    mask = np.zeros((32, 40), np.uint8)
    mask[5:15, 5:15] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert main(["inpaint", str(tmp_path / "g.png"), "--mask", str(tmp_path / "m.png"),
                 "-o", str(tmp_path / "g_out.png"), "--prior-only", "--prior", "smooth",
                 "-q"]) == 0
    g_out = Image.open(tmp_path / "g_out.png")
    assert g_out.mode == "L"
    assert np.array_equal(np.asarray(g_out)[mask == 0], gray[mask == 0])

    deep = (gray.astype(np.uint16) * 257 + 3)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert main(["inpaint", str(tmp_path / "d.png"), "--mask", str(tmp_path / "m.png"),
                 "-o", str(tmp_path / "d_out.png"), "--prior-only", "--prior", "smooth",
                 "-q"]) == 0
    d_out = np.asarray(Image.open(tmp_path / "d_out.png"))
    assert d_out.dtype == np.uint16 and np.array_equal(d_out[mask == 0], deep[mask == 0])


def test_box_option(photo, tmp_path, capsys):
    img_path, _ = photo
    out = tmp_path / "box.png"
    assert main(["inpaint", str(img_path), "--box", "10,5,30,25", "-o", str(out), "-q",
                 "--prior-only", "--prior", "smooth"]) == 0
    src, res = np.asarray(Image.open(img_path)), np.asarray(Image.open(out))
    changed = (src != res).any(axis=2)
    assert not changed[:5].any() and not changed[:, :10].any() and not changed[25:].any()
    assert main(["inpaint", str(img_path), "--box", "10,5,300,25", "-o", str(out),
                 "--overwrite", "-q"]) == 2
    assert "not a rectangle inside the 80x64 image" in capsys.readouterr().err


def test_inverted_mask_is_refused_with_a_hint(photo, tmp_path, capsys):
    img_path, _ = photo
    inverted = np.full((64, 80), 255, np.uint8)
    inverted[20:30, 30:40] = 0  # a mask drawn the wrong way round: 98 % hole
    Image.fromarray(inverted).save(tmp_path / "inv.png")
    out = tmp_path / "o.png"
    args = ["inpaint", str(img_path), "--mask", str(tmp_path / "inv.png"), "-o", str(out), "-q",
            "--prior-only", "--prior", "smooth"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "probably inverted" in err and "--invert-mask" in err and not out.exists()
    assert main([*args, "--invert-mask"]) == 0
    src, res = np.asarray(Image.open(img_path)), np.asarray(Image.open(out))
    changed = (src != res).any(axis=2)
    assert changed.any() and not changed[inverted > 0].any()
    assert main([*args, "--allow-large-hole", "--overwrite"]) == 0
    assert (np.asarray(Image.open(out)) != src).any(axis=2)[inverted > 0].mean() > 0.5


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "mask"])
def test_never_replaces_its_own_input(how, photo, tmp_path, capsys):
    img_path, mask_path = photo
    before = img_path.read_bytes(), mask_path.read_bytes()
    out = {"same": img_path, "symlink": tmp_path / "link.png", "hardlink": tmp_path / "hard.png",
           "mask": mask_path}[how]
    if how == "symlink":
        out.symlink_to(img_path)
    elif how == "hardlink":
        os.link(img_path, out)
    assert main(["inpaint", str(img_path), "--mask", str(mask_path), "-o", str(out), "-q",
                 "--overwrite", "--prior-only", "--prior", "smooth"]) == 2
    err = capsys.readouterr().err.strip()
    assert "itself, and nps never replaces an original" in err and len(err.splitlines()) == 1
    assert (img_path.read_bytes(), mask_path.read_bytes()) == before


@pytest.mark.parametrize("where", ["unwritable", "long-name", "no-folder"])
def test_bad_destination_stops_before_computing(where, photo, tmp_path, unwritable_dir,
                                                monkeypatch, capsys):
    from neural_patch_synth.api import Inpainter

    def computed(*args, **kwargs):
        raise AssertionError("the photo was computed before the destination was checked")

    monkeypatch.setattr(Inpainter, "photo", computed)
    img_path, mask_path = photo
    out = {"unwritable": unwritable_dir / "o.png", "long-name": tmp_path / ("n" * 260 + ".png"),
           "no-folder": tmp_path / "missing" / "o.png"}[where]
    assert main(["inpaint", str(img_path), "--mask", str(mask_path), "-o", str(out), "-q",
                 "--prior-only", "--prior", "smooth"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("nps: error: ")
    assert {"unwritable": "cannot write in the output folder", "long-name": "too long",
            "no-folder": "does not exist"}[where] in err


def test_usage_errors_are_one_line(photo, capsys):
    img_path, _ = photo
    with pytest.raises(SystemExit) as stop:
        main(["inpaint", str(img_path), "--bogus", "-o", "x.png"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "--bogus" in err
    # A value starting with "-" still reaches --extend, which names what is wrong with it.
    assert main(["outpaint", str(img_path), "--extend", "-5,0,0,0", "-o", "x.png"]) == 2
    assert "negative" in capsys.readouterr().err


def test_seams_flag_sets_the_option_and_defaults_to_on(photo, tmp_path):
    parser = build_parser()
    base = ["inpaint", str(photo), "--box", "1,1,4,4", "-o", str(tmp_path / "o.png")]
    assert engine_config(parser.parse_args(base)).seams is True
    assert engine_config(parser.parse_args([*base, "--no-seams"])).seams is False
    assert engine_config(parser.parse_args([*base, "--seams"])).seams is True


def test_detail_option_sets_the_amount(photo, tmp_path):
    parser = build_parser()
    base = ["inpaint", str(photo), "--box", "1,1,4,4", "-o", str(tmp_path / "o.png")]
    assert engine_config(parser.parse_args(base)).detail == InpaintConfig().detail
    assert engine_config(parser.parse_args([*base, "--detail", "0"])).detail == 0.0


def test_guide_sigma_option_sets_the_blur_and_refuses_a_bad_one(photo, tmp_path, capsys):
    parser = build_parser()
    base = ["inpaint", str(photo), "--box", "1,1,4,4", "-o", str(tmp_path / "o.png")]
    assert engine_config(parser.parse_args(base)).guide_sigma == InpaintConfig().guide_sigma
    assert engine_config(parser.parse_args([*base, "--guide-sigma", "12"])).guide_sigma == 12.0
    assert main([*base, "--guide-sigma", "0"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "guide_sigma" in err[0]
    assert not (tmp_path / "o.png").exists()


def test_shifts_option_sets_the_count(photo, tmp_path):
    parser = build_parser()
    base = ["inpaint", str(photo), "--box", "1,1,4,4", "-o", str(tmp_path / "o.png")]
    assert engine_config(parser.parse_args(base)).for_command("inpaint").shifts == 60
    assert engine_config(parser.parse_args([*base, "--shifts", "0"])).shifts == 0
