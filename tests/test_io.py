import logging
import os
import struct
import types

import numpy as np
import pytest
from PIL import Image, ImageCms

from neural_patch_synth import NPSError
from neural_patch_synth.io import (
    Photo,
    check_destination,
    check_mask,
    load_image,
    load_mask,
    mask_from_alpha,
    mask_from_array,
    parse_size,
    save_image,
    write_text,
)
from neural_patch_synth.io16 import write_png16, write_tiff16


def test_missing_corrupt_and_folder(tmp_path):
    with pytest.raises(NPSError, match="not found"):
        load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(NPSError, match="could not be decoded"):
        load_image(bad)
    with pytest.raises(NPSError, match="folder"):
        load_image(tmp_path)


def test_too_large_is_refused(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    with pytest.raises(NPSError, match="too large"):
        load_image(path, max_pixels=300 * 299)


def test_grayscale_rgba_and_16bit(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").save(tmp_path / "g.png")
    g = load_image(tmp_path / "g.png")
    assert g.gray and g.pixels.shape == (8, 8, 3) and g.pixels.dtype == np.uint8
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[1, 2, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = load_image(tmp_path / "a.png")
    assert mask_from_alpha(a.alpha).sum() == 1 and mask_from_alpha(a.alpha)[1, 2]
    deep = (np.arange(16, dtype=np.uint16) * 4000).reshape(4, 4)
    Image.fromarray(deep).save(tmp_path / "d.png")
    d = load_image(tmp_path / "d.png")
    assert d.pixels.dtype == np.uint16 and np.array_equal(d.pixels[..., 0], deep)
    save_image(tmp_path / "d2.png", d)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d2.png")), deep)


def test_exif_rotation_is_applied(tmp_path):
    px = np.zeros((2, 4, 3), np.uint8)
    px[0, 0] = 255  # top-left red-ish marker
    img = Image.fromarray(px)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    photo = load_image(tmp_path / "r.jpg")
    assert photo.pixels.shape == (4, 2, 3)
    assert photo.pixels[0, 1].mean() > 128  # marker moved to the top-right
    exif = Image.Exif()
    exif.load(photo.info["exif"])
    assert 0x0112 not in exif  # orientation applied once, not again by viewers


def test_mask_conventions_and_size(tmp_path):
    m = np.zeros((6, 5), np.uint8)
    m[1:3, 1:3] = 1  # a 0/1 mask: its 1s are the hole
    Image.fromarray(m).save(tmp_path / "m.png")
    hole = load_mask(tmp_path / "m.png", (5, 6))
    assert hole.dtype == bool and hole.sum() == 4
    with pytest.raises(NPSError, match="mask is 5x6 but the image is 7x6"):
        load_mask(tmp_path / "m.png", (7, 6))
    with pytest.raises(NPSError, match="empty"):
        check_mask(np.zeros((3, 3), bool))
    with pytest.raises(NPSError, match="whole image"):
        check_mask(np.ones((3, 3), bool))


def test_save_is_atomic_and_refuses_overwrite(tmp_path):
    photo = Photo(np.full((4, 4, 3), 7, np.uint8))
    out = tmp_path / "o.jpg"
    save_image(out, photo)
    before = out.read_bytes()
    with pytest.raises(NPSError, match="exists"):
        save_image(out, Photo(np.zeros((4, 4, 3), np.uint8)))
    assert out.read_bytes() == before
    save_image(out, Photo(np.zeros((4, 4, 3), np.uint8)), overwrite=True)
    assert out.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["o.jpg"]  # no temp files left
    with pytest.raises(NPSError, match="unknown output extension"):
        save_image(tmp_path / "o.xyz", photo)


def test_write_text_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "summary.md"
    write_text(out, "first\n")
    out.chmod(0o640)
    write_text(out, "second ✓\n")
    assert out.read_text() == "second ✓\n"
    assert out.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its own
    real_fsync = os.fsync

    def full_disk(fd):
        real_fsync(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(NPSError, match="No space left"):
        write_text(out, "third\n")
    assert out.read_text() == "second ✓\n"  # the old file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]  # no temporary file left


def test_jpeg_saved_mask_keeps_its_holes(tmp_path):
    m = np.zeros((64, 80), np.uint8)
    m[13:41, 21:50] = 255
    Image.fromarray(m).save(tmp_path / "m.jpg", quality=75)
    assert (np.asarray(Image.open(tmp_path / "m.jpg")) != 0).sum() > 1.3 * (m > 0).sum()  # ringing
    assert np.array_equal(load_mask(tmp_path / "m.jpg"), m > 0)


def test_mask_threshold_is_half_scale_for_every_kind(tmp_path):
    deep = np.zeros((4, 6), np.uint16)
    deep[0] = 300  # faint noise: not a hole
    deep[1] = 40000
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode == "I;16"
    assert np.array_equal(load_mask(tmp_path / "d.png"), deep >= 32768)
    real = np.array([[0.2, 0.49, 0.5, 1.0]], np.float32)
    Image.fromarray(real, "F").save(tmp_path / "f.tif")
    assert load_mask(tmp_path / "f.tif").tolist() == [[False, False, True, True]]
    rgba = np.zeros((1, 4, 4), np.uint8)
    rgba[..., 3] = [0, 100, 128, 255]  # uniform colour: the alpha is the mask
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert load_mask(tmp_path / "a.png").tolist() == [[False, False, True, True]]
    red = np.zeros((1, 3, 3), np.uint8)
    red[0, 1:, 0] = [100, 200]  # a red-on-black mask: the brightest channel counts
    Image.fromarray(red).save(tmp_path / "r.png")
    assert load_mask(tmp_path / "r.png").tolist() == [[False, False, True]]
    assert mask_from_array(np.array([[0, 100, 200]], np.uint8)).tolist() == [[False, False, True]]
    assert mask_from_array(np.array([[0, 1, 1]], np.int64)).tolist() == [[False, True, True]]
    assert mask_from_array(np.array([[0.1, 0.7]])).tolist() == [[False, True]]


def test_nearly_full_mask_is_refused_as_inverted():
    mask = np.ones((10, 10), bool)
    mask[:3, :3] = False  # 91 % hole
    with pytest.raises(NPSError, match="91% of the image, so it is probably inverted"):
        check_mask(mask)
    check_mask(mask, allow_large_hole=True)
    check_mask(~mask)


def cmyk_profile(lab: tuple[float, float, float] = (50.0, 0.0, 0.0)) -> bytes:
    """A minimal ICC v2 CMYK printer profile whose A2B0 table maps every colour to ``lab``
    (L* 50 grey is sRGB 119 under relative colorimetric rendering)."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    text = b"nps test CMYK\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    white = s15(0.9642) + s15(1.0) + s15(0.8249)
    code = [round(lab[0] / 100 * 0xFF00), round((lab[1] + 128) * 256), round((lab[2] + 128) * 256)]
    lut = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + b"".join(s15(v) for v in np.eye(3).flat)
           + struct.pack(">HH", 2, 2) + struct.pack(">8H", *[0, 65535] * 4)
           + struct.pack(">48H", *code * 16) + struct.pack(">6H", *[0, 65535] * 3))
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + white),
            (b"cprt", b"text" + bytes(4) + b"none\0"), (b"A2B0", lut)]
    start = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", start + len(data), len(body))
        data += body
    header = (struct.pack(">I", start + len(data)) + b"lcms" + struct.pack(">I", 0x02100000)
              + b"prtrCMYKLab " + bytes(12) + b"acsp" + bytes(28) + white + bytes(48))
    return header + table + data


def _deep(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    """Random 16-bit samples whose low bytes differ from their high bytes."""
    return np.random.default_rng(seed).integers(0, 65536, (height, width, channels),
                                                dtype=np.uint16)


@pytest.mark.parametrize("kind", ["png-rgb", "png-rgba", "tiff-lzw-predictor", "tiff-raw"])
def test_16bit_colour_is_read_and_written_with_16_bits(kind, tmp_path):
    planes = _deep(6, 9, 4 if kind == "png-rgba" else 3)
    src = tmp_path / ("in.png" if kind.startswith("png") else "in.tif")
    with open(src, "wb") as f:
        if kind.startswith("png"):
            write_png16(f, planes, dpi=(300.0, 300.0))
        else:
            write_tiff16(f, planes, "tiff_lzw" if "lzw" in kind else "raw",
                         predictor="predictor" in kind, dpi=(300.0, 300.0))
    with Image.open(src) as plain:  # Pillow alone: the high bytes, as 8-bit RGB(A)
        assert np.array_equal(np.asarray(plain), (planes >> 8).astype(np.uint8))
    photo = load_image(src)
    assert photo.pixels.dtype == np.uint16 and np.array_equal(photo.pixels, planes[..., :3])
    if kind == "png-rgba":
        assert np.array_equal(photo.alpha, planes[..., 3])
    out = tmp_path / f"out{src.suffix}"
    save_image(out, photo)
    again = load_image(out)
    assert np.array_equal(again.pixels, photo.pixels)
    assert again.info["dpi"] == pytest.approx((300.0, 300.0), abs=0.01)
    with Image.open(out) as plain:
        assert np.array_equal(np.asarray(plain), (planes >> 8).astype(np.uint8))
        if kind.startswith("tiff"):
            assert plain.info["compression"] == ("tiff_lzw" if "lzw" in kind else "raw")
            assert plain.tag_v2.get(317, 1) == (2 if "predictor" in kind else 1)
    cv2 = pytest.importorskip("cv2")  # an independent decoder, where installed
    decoded = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded[..., [2, 1, 0, 3][:planes.shape[2]]], planes)


def test_16bit_colour_in_an_8bit_format_is_said(tmp_path, caplog):
    src = tmp_path / "in.png"
    with open(src, "wb") as f:
        write_png16(f, _deep(4, 4, 3))
    with caplog.at_level(logging.WARNING):
        save_image(tmp_path / "out.jpg", load_image(src))
    assert "the 16-bit photo is written with 8" in caplog.text


def test_cmyk_is_converted_through_its_profile(tmp_path, caplog):
    cmyk = np.random.default_rng(0).integers(0, 256, (8, 10, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", icc_profile=cmyk_profile())
    with caplog.at_level(logging.WARNING):
        photo = load_image(tmp_path / "c.jpg")
    assert "CMYK photo converted to sRGB" in caplog.text
    assert np.abs(photo.pixels.astype(int) - 119).max() <= 1  # L* 50, not a naive conversion
    save_image(tmp_path / "out.jpg", photo)
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.mode == "RGB"
        space = ImageCms.ImageCmsProfile(ImageCms.core.profile_frombytes(out.info["icc_profile"]))
        assert space.profile.xcolor_space == "RGB "
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "bare.jpg")
    with pytest.raises(NPSError, match="CMYK without a usable CMYK colour profile"):
        load_image(tmp_path / "bare.jpg")


def test_lab_tiff_becomes_srgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    lab = ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.createProfile("sRGB"),
                                    ImageCms.createProfile("LAB"), outputMode="LAB")
    lab.save(tmp_path / "lab.tif")
    photo = load_image(tmp_path / "lab.tif")
    assert np.abs(photo.pixels.astype(int) - rgb).mean() < 3
    assert photo.info["icc_profile"][16:20] == b"RGB "


def test_profile_for_other_pixels_is_not_written(tmp_path, caplog):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("L", (4, 4), 90).save(tmp_path / "g.png", icc_profile=srgb)
    with caplog.at_level(logging.WARNING):
        save_image(tmp_path / "out.png", load_image(tmp_path / "g.png"))
    assert "not for its GRAY pixels" in caplog.text
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "L" and "icc_profile" not in out.info


def _webp_chunk(path) -> bytes:
    return path.read_bytes()[12:16]


def test_encoders_keep_lossless_compression_and_dpi(tmp_path):
    px = np.random.default_rng(2).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    img = Image.fromarray(px)
    img.save(tmp_path / "lossless.webp", lossless=True)
    img.save(tmp_path / "lossy.webp", quality=70)
    img.save(tmp_path / "scan.tif", compression="tiff_adobe_deflate", tiffinfo={317: 2},
             dpi=(600, 600))
    img.save(tmp_path / "a.jpg", dpi=(300, 300))
    img.save(tmp_path / "b.png", dpi=(72, 72))
    for name in ("lossless.webp", "lossy.webp", "scan.tif", "a.jpg", "b.png"):
        save_image(tmp_path / f"out-{name}", load_image(tmp_path / name))
    assert _webp_chunk(tmp_path / "out-lossless.webp") == b"VP8L"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out-lossless.webp")), px)
    assert _webp_chunk(tmp_path / "out-lossy.webp") == b"VP8 "
    save_image(tmp_path / "from-png.webp", load_image(tmp_path / "b.png"))  # lossless source
    assert _webp_chunk(tmp_path / "from-png.webp") == b"VP8L"
    with Image.open(tmp_path / "out-scan.tif") as tif:
        assert tif.info["compression"] == "tiff_adobe_deflate" and tif.tag_v2[317] == 2
        assert tif.info["dpi"] == (600, 600) and np.array_equal(np.asarray(tif), px)
    assert Image.open(tmp_path / "out-a.jpg").info["dpi"] == (300, 300)
    assert np.allclose(Image.open(tmp_path / "out-b.png").info["dpi"], (72, 72), atol=0.01)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        save_image(tmp_path / "o.png", Photo(np.zeros((2, 2, 3), np.uint8)))
    finally:
        os.umask(old)
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == mode
    (tmp_path / "o.png").chmod(0o640)
    save_image(tmp_path / "o.png", Photo(np.ones((2, 2, 3), np.uint8)), overwrite=True)
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o640  # a replaced file keeps its own


def test_long_names_get_short_temporary_files(tmp_path):
    out = tmp_path / ("x" * 240 + ".png")  # fits, but ".NAME.XXXXXXXX.part" would not
    save_image(out, Photo(np.zeros((2, 2, 3), np.uint8)))
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_destination_is_checked_before_any_work(tmp_path, unwritable_dir, monkeypatch):
    src = tmp_path / "in.png"
    Image.new("RGB", (4, 4)).save(src)
    with pytest.raises(NPSError, match="cannot write in the output folder"):
        check_destination(unwritable_dir / "o.png")
    with pytest.raises(NPSError, match="output folder does not exist"):
        check_destination(tmp_path / "nope" / "o.png")
    with pytest.raises(NPSError, match=r"too long for its file system \(300 bytes"):
        check_destination(tmp_path / ("y" * 296 + ".png"))
    with pytest.raises(NPSError, match="output exists"):
        check_destination(src)
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    for name in ("in.png", "link.png", "hard.png"):
        with pytest.raises(NPSError, match="is the input .* itself"):
            check_destination(tmp_path / name, overwrite=True, sources=[src])
    check_destination(tmp_path / "new.png", sources=[src], needed=10)
    monkeypatch.setattr("shutil.disk_usage", lambda _: types.SimpleNamespace(free=5))
    with pytest.raises(NPSError, match="not enough free space"):
        check_destination(tmp_path / "new.png", needed=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hard.png", "in.png", "link.png", "locked"]  # no probe file left behind


def test_16bit_layout_that_cannot_be_split_is_read_with_8_bits_and_said(tmp_path, monkeypatch,
                                                                        caplog):
    from neural_patch_synth import io

    planes = _deep(4, 5, 3)
    with open(tmp_path / "in.png", "wb") as f:
        write_png16(f, planes)
    monkeypatch.setattr(io, "_low_byte_tiles",
                        lambda img: [t._replace(args="no such mode") for t in img.tile])
    with caplog.at_level(logging.WARNING):
        photo = load_image(tmp_path / "in.png")
    assert "the 16-bit RGB samples of" in caplog.text and "read with 8 bits" in caplog.text
    assert np.array_equal(photo.pixels, (planes >> 8).astype(np.uint8))


def test_parse_size_reads_wxh_and_names_the_flag_when_bad():
    assert parse_size("1536x512", "--to") == (1536, 512)
    assert parse_size(" 8 × 6 ", "--to") == (8, 6)
    assert parse_size("8X6", "--to") == (8, 6)
    for bad in ("0x5", "12", "axb", "1x2x3", "-4x5", ""):
        with pytest.raises(NPSError, match="--photo takes WxH"):
            parse_size(bad, "--photo")
