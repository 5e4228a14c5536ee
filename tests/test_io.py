import numpy as np
import pytest
from PIL import Image

from neural_patch_synth import NPSError
from neural_patch_synth.io import (
    Photo,
    check_mask,
    load_image,
    load_mask,
    mask_from_alpha,
    mask_from_array,
    save_image,
)


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
