"""``nps batch``: a mixed archive, resume after a kill, shards, globs and lists, workers."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from neural_patch_synth import batch
from neural_patch_synth.cli import build_parser, main
from neural_patch_synth.config import InpaintConfig
from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import load_image

FAST = ["--prior", "smooth", "--prior-only", "-q"]
DONE = {"a.jpg", "b.png", "sub/c.png", "sub/deep/d.jpg", "alpha.png"}
FAILED = {  # relative path -> words of the expected error
    "nomask.jpg": "missing mask",
    "corrupt.jpg": "could not be decoded",
    "wrongsize.png": "mask is 10x10",
    "emptymask.png": "mask is empty",
    "fullmask.png": "whole image",
}


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth random RGB image (compresses and fills like a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def _mask(path: Path, width: int, height: int, fill: int | None = None) -> None:
    """A mask with a square hole, or uniformly ``fill``."""
    m = np.zeros((height, width), np.uint8)
    if fill is None:
        m[height // 4: height // 2, width // 4: width // 2] = 255
    else:
        m[:] = fill
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)


def _open(path: Path) -> Image.Image:
    """A fully read image, its file closed."""
    with Image.open(path) as img:
        img.load()
    return img


def _save(path: Path, pixels: np.ndarray, **params) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **params)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, Path]:
    """``photos/`` and ``masks/`` covering every case; see DONE and FAILED."""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = 6  # orientation: rotate, so the photo is 32x40 once turned
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _save(photos / "a.jpg", _photo(40, 32, 0), exif=exif.tobytes(), icc_profile=icc, quality=95)
    _mask(masks / "a.png", 32, 40)
    for i, rel in enumerate(["b.png", "sub/c.png", "sub/deep/d.jpg", "nomask.jpg",
                             "wrongsize.png", "emptymask.png", "fullmask.png"]):
        _save(photos / rel, _photo(40, 30, i + 1))
    for rel in ["b", "sub/c", "sub/deep/d"]:
        _mask(masks / f"{rel}.png", 40, 30)
    _mask(masks / "wrongsize.png", 10, 10)
    _mask(masks / "emptymask.png", 40, 30, fill=0)
    _mask(masks / "fullmask.png", 40, 30, fill=255)
    rgba = np.dstack([_photo(36, 36, 9), np.full((36, 36), 255, np.uint8)])
    rgba[10:20, 10:20, 3] = 0
    _save(photos / "alpha.png", rgba)
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "notes.txt").write_text("not a photo")
    _save(photos / ".hidden.jpg", _photo(8, 8, 10))
    return photos, masks


def _hashes(*folders: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def _records(report: Path | list[str], root: Path) -> dict[str, dict]:
    """Latest record per photo (from a report file or its lines), keyed by path from ``root``."""
    lines = report.read_text().splitlines() if isinstance(report, Path) else report
    records = [json.loads(line) for line in lines]
    return {Path(r["path"]).relative_to(root).as_posix(): r for r in records}


def _statuses(records: dict[str, dict]) -> dict[str, str]:
    return {rel: r["status"] for rel, r in records.items()}


def _batch(photos, masks, out, *extra) -> int:
    return main(["batch", str(photos), "--masks", str(masks), "-o", str(out), *FAST, *extra])


def test_mixed_archive(archive, tmp_path, capsys):
    photos, masks = archive
    out = tmp_path / "out"
    before = _hashes(photos, masks)
    assert _batch(photos, masks, out, "--recursive") == 1
    assert _hashes(photos, masks) == before  # originals and masks byte-identical

    records = _records(out / "nps-report.jsonl", photos)
    assert _statuses(records) == {**dict.fromkeys(DONE, "done"), **dict.fromkeys(FAILED, "failed")}
    for rel, words in FAILED.items():
        assert words in records[rel]["error"]
        assert not (out / rel).exists()
    for rel in DONE:
        r = records[rel]
        assert r["error"] is None and r["seconds"] >= 0 and r["output"] == str(out / rel)
        assert _open(out / rel).format == _open(photos / rel).format
        assert load_image(out / rel).size == load_image(photos / rel).size
    assert "5 done, 0 skipped, 5 failed" in capsys.readouterr().err

    result = _open(out / "a.jpg")
    assert result.size == (32, 40)
    assert result.getexif()[0x010F] == "TestCam" and 0x0112 not in result.getexif()
    assert result.info["icc_profile"] == _open(photos / "a.jpg").info["icc_profile"]
    b_in, b_out = np.asarray(_open(photos / "b.png")), np.asarray(_open(out / "b.png"))
    hole = np.asarray(_open(masks / "b.png")) > 0
    assert np.array_equal(b_in[~hole], b_out[~hole]) and not np.array_equal(b_in, b_out)
    assert (np.asarray(_open(out / "alpha.png").convert("RGBA"))[..., 3] == 255).all()


def test_resume_after_kill(archive, tmp_path):
    photos, masks = archive
    out = tmp_path / "out"
    assert _batch(photos, masks, out, "--recursive") == 1
    report = out / "nps-report.jsonl"
    first = report.read_text().splitlines()
    stamps = {rel: (out / rel).stat().st_mtime_ns for rel in DONE}
    # "Kill" the run while it wrote sub/c.png and before it reached b.png.
    (out / "sub/c.png").unlink()
    (out / "b.png").unlink()
    stray = out / "sub" / ".c.png.k1ll3d.part"
    stray.write_bytes(b"half a png")
    foreign = out / ".other.jpg.abc.part"  # not one of this run's outputs: left alone
    foreign.write_bytes(b"x")
    with open(report, "ab") as f:
        f.write(b'{"path": "torn')  # the kill cut a line short

    assert _batch(photos, masks, out, "--recursive") == 1
    assert not stray.exists() and foreign.exists()
    lines = report.read_text().splitlines()
    assert lines[: len(first)] == first and lines[len(first)] == '{"path": "torn'
    records = _records(lines[len(first) + 1:], photos)
    assert _statuses(records) == {"b.png": "done", "sub/c.png": "done",
                                  **dict.fromkeys(DONE - {"b.png", "sub/c.png"}, "skipped"),
                                  **dict.fromkeys(FAILED, "failed")}
    for rel in DONE - {"b.png", "sub/c.png"}:
        assert (out / rel).stat().st_mtime_ns == stamps[rel]  # not rewritten


def test_foreign_file_at_output_is_never_replaced(archive, tmp_path):
    photos, masks = archive
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    _save(out / "b.png", _photo(12, 12, 5))  # someone else's picture, another size
    (out / "sub" / "c.png").write_bytes(b"unreadable")
    before = _hashes(out)
    assert _batch(photos, masks, out, "--recursive") == 1
    records = _records(out / "nps-report.jsonl", photos)
    for rel in ("b.png", "sub/c.png"):
        assert records[rel]["status"] == "failed" and "output exists" in records[rel]["error"]
    after = _hashes(out)
    assert {p: after[p] for p in before} == before


def test_shards_cover_every_photo_once(archive, tmp_path):
    photos, masks = archive
    out = tmp_path / "out"
    seen: list[str] = []
    for i in (1, 2, 3):
        assert _batch(photos, masks, out, "--recursive", "--shard", f"{i}/3") in (0, 1)
        seen += _records(out / f"nps-report-shard{i}of3.jsonl", photos)
    assert sorted(seen) == sorted(DONE | set(FAILED))
    assert not (out / "nps-report.jsonl").exists()


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "x", "1-3"])
def test_bad_shard_spec(spec, archive, tmp_path, capsys):
    photos, masks = archive
    assert _batch(photos, masks, tmp_path / "out", "--shard", spec) == 2
    assert "bad --shard" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_shard_is_stable_and_exclusive():
    rels = [batch.PurePosixPath(f"roll{i // 10}/img{i}.jpg") for i in range(300)]
    shares = [[r for r in rels if batch.in_shard(r, i, 4)] for i in (1, 2, 3, 4)]
    assert sorted(sum(shares, [])) == sorted(rels)
    assert all(50 <= len(share) <= 100 for share in shares)
    assert batch.parse_shard(" 2 / 8 ") == (2, 8)


def test_glob_input(archive, tmp_path):
    photos, masks = archive
    inputs = batch.find_inputs(str(photos / "**" / "*.png"), recursive=False)
    assert inputs.root == photos and inputs.recurses
    jobs = batch.plan_jobs(inputs, masks, tmp_path / "out", "_m")
    assert [j.rel.as_posix() for j in jobs] == [
        "alpha.png", "b.png", "emptymask.png", "fullmask.png", "sub/c.png", "wrongsize.png"]
    c = jobs[4]
    assert c.mask == masks / "sub" / "c_m.png" and c.output == tmp_path / "out" / "sub" / "c.png"

    out = tmp_path / "out2"
    assert _batch(photos / "sub" / "*.[pP][nN][gG]", masks / "sub", out) == 0
    assert (out / "c.png").is_file() and not (out / "sub").exists()


def test_list_input(archive, tmp_path):
    photos, masks = archive
    listing = tmp_path / "lists" / "todo.txt"
    listing.parent.mkdir()
    listing.write_text(f"# photos to redo\n\n../photos/b.png\n  {photos / 'sub/c.png'}  \n"
                       "../photos/b.png\n../photos/gone.jpg\n")
    inputs = batch.find_inputs(str(listing), recursive=False)
    assert inputs.root == photos and not inputs.recurses
    assert inputs.files == [photos / "b.png", photos / "sub/c.png", photos / "gone.jpg"]

    out = tmp_path / "out"
    assert _batch(listing, masks, out) == 1
    records = _records(out / "nps-report.jsonl", photos)
    assert _statuses(records) == {"b.png": "done", "sub/c.png": "done", "gone.jpg": "failed"}
    assert "not found" in records["gone.jpg"]["error"]
    assert (out / "sub" / "c.png").is_file()


def test_mask_suffix_and_masks_inside_input(tmp_path):
    photos = tmp_path / "photos"
    _save(photos / "x.png", _photo(30, 30, 1))
    _mask(photos / "masks" / "x-hole.png", 30, 30)
    out = tmp_path / "out"
    assert _batch(photos, photos / "masks", out, "--recursive", "--mask-suffix=-hole") == 0
    assert _statuses(_records(out / "nps-report.jsonl", photos)) == {"x.png": "done"}


@pytest.mark.parametrize("case", ["same", "inside-recursive", "masks", "report", "parent"])
def test_refuses_unsafe_layouts(case, archive, capsys):
    photos, masks = archive
    before = _hashes(photos, masks)
    out, extra = {
        "same": (photos, []),
        "inside-recursive": (photos / "out", ["--recursive"]),
        "masks": (masks, []),  # out/b.png would be masks/b.png
        "report": (photos.parent / "out", ["--report", str(photos / "b.png")]),
        "parent": (photos.parent, ["--recursive"]),
    }[case]
    args = [str(photos / "sub") if case == "parent" else str(photos)]
    assert main(["batch", *args, "--masks", str(masks), "-o", str(out), *FAST, *extra]) == 2
    assert "nps: error:" in capsys.readouterr().err
    assert _hashes(photos, masks) == before
    assert not (photos / "out").exists()


def test_output_inside_input_without_recursion_is_fine(archive):
    photos, masks = archive
    assert _batch(photos, masks, photos / "out") == 1
    assert (photos / "out" / "b.png").is_file()
    assert _batch(photos, masks, photos / "out") == 1
    report = (photos / "out" / "nps-report.jsonl").read_text().splitlines()
    assert not any(rel.startswith("out/") for rel in _records(report, photos))


@pytest.mark.parametrize("problem", ["no-masks", "no-photos", "no-input", "workers"])
def test_usage_errors(problem, archive, tmp_path, capsys):
    photos, masks = archive
    empty = tmp_path / "empty"
    empty.mkdir()
    args = {"no-masks": [photos, tmp_path / "nope"], "no-photos": [empty, masks],
            "no-input": [tmp_path / "nope", masks], "workers": [photos, masks]}[problem]
    extra = ["--workers", "0"] if problem == "workers" else []
    assert _batch(*args, tmp_path / "out", *extra) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_names_that_are_not_utf8(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    name = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name from an old archive
    _save(photos / name, _photo(24, 24, 1))
    _mask(masks / name, 24, 24)
    listing = tmp_path / "list.txt"
    listing.write_text("\ufeffphotos/b.png\n", encoding="utf-8")  # BOM from a Windows editor
    assert batch.find_inputs(str(listing), False).files == [photos / "b.png"]
    assert _batch(photos, masks, tmp_path / "out") == 0
    assert _statuses(_records(tmp_path / "out" / "nps-report.jsonl", photos)) == {name: "done"}


def test_two_workers(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    for i in range(3):
        _save(photos / f"p{i}.png", _photo(24, 24, i))
        _mask(masks / f"p{i}.png", 24, 24)
    _save(photos / "orphan.png", _photo(24, 24, 7))
    out = tmp_path / "out"
    assert _batch(photos, masks, out, "--workers", "2") == 1
    statuses = _statuses(_records(out / "nps-report.jsonl", photos))
    assert statuses == {"p0.png": "done", "p1.png": "done", "p2.png": "done",
                        "orphan.png": "failed"}


def test_real_engine_run(tmp_path, capsys):
    """One small run of the full engine (random VGG weights: only the plumbing is tested)."""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    _save(photos / "p.png", _photo(48, 48, 3))
    _mask(masks / "p.png", 48, 48)
    torch.manual_seed(0)
    vgg = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.randn(64, 3, 3, 3) * 0.1,
                "features.0.bias": torch.zeros(64)}, vgg)
    config = InpaintConfig(prior="smooth", iterations=(3,), layers=("relu1_1",), coarse_size=32,
                           vgg_weights=str(vgg), device="cpu", progress=False)
    args = build_parser().parse_args(
        ["batch", str(photos), "--masks", str(masks), "-o", str(tmp_path / "out"), "-q"])
    assert batch.run_batch(args, config) == 0
    assert "1 done" in capsys.readouterr().err
    src, res = (np.asarray(_open(d / "p.png")) for d in (photos, tmp_path / "out"))
    hole = np.asarray(_open(masks / "p.png")) > 0
    assert np.array_equal(src[~hole], res[~hole])


def test_engine_that_cannot_start_stops_the_run(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    _save(photos / "p.png", _photo(24, 24, 3))
    _mask(masks / "p.png", 24, 24)
    config = InpaintConfig(prior=str(tmp_path / "missing.pt"), progress=False)
    args = build_parser().parse_args(
        ["batch", str(photos), "--masks", str(masks), "-o", str(tmp_path / "out"), "-q"])
    with pytest.raises(NPSError, match="not found"):
        batch.run_batch(args, config)


def test_report_is_appended_and_locked(tmp_path):
    path = tmp_path / "r" / "report.jsonl"
    for n in range(2):
        with batch.Report(path) as report:
            report.write({"path": f"p{n}", "status": "done"})
            if n == 1:
                with pytest.raises(NPSError, match="another nps batch run"):
                    batch.Report(path)
    assert [json.loads(line)["path"] for line in path.read_text().splitlines()] == ["p0", "p1"]
