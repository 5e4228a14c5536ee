"""``nps batch``: a mixed archive, resume after a kill, shards, globs and lists, workers."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from neural_patch_synth import batch
from neural_patch_synth.cli import main
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


RESULTS = ("done", "skipped", "failed")


def _records(report: Path | list[str], root: Path) -> dict[str, dict]:
    """Latest result per photo (from a report file or its lines), keyed by path from ``root``."""
    lines = report.read_text().splitlines() if isinstance(report, Path) else report
    records = [r for r in map(json.loads, lines) if r["status"] in RESULTS]
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
    stray = out / "sub" / ".c.png.0badc0de-k1ll3d00.part"  # its run (0badc0de) is gone
    stray.write_bytes(b"half a png")
    foreign = out / ".other.jpg.abc12345.part"  # no run id (nps inpaint): left alone
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


def test_two_workers(tmp_path, capsys):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    for i in range(3):
        _save(photos / f"p{i}.png", _photo(24, 24, i))
        _mask(masks / f"p{i}.png", 24, 24)
    _save(photos / "orphan.png", _photo(24, 24, 7))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _save(photos / "gray.png", _photo(24, 24, 8)[..., 0], icc_profile=srgb)  # warns
    _mask(masks / "gray.png", 24, 24)
    out = tmp_path / "out"
    assert _batch(photos, masks, out, "--workers", "2") == 1
    records = _records(out / "nps-report.jsonl", photos)
    assert _statuses(records) == {"p0.png": "done", "p1.png": "done", "p2.png": "done",
                                  "gray.png": "done", "orphan.png": "failed"}
    assert "not for its GRAY pixels" in records["gray.png"]["warnings"][0]
    err = capsys.readouterr().err
    assert "nps: warning: the colour profile of" in err and "Traceback" not in err
    pids = {r["pid"] for r in _lines(out / "nps-report.jsonl") if r["status"] == "started"}
    assert len(pids) == 2 and os.getpid() not in pids


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
    options = batch.BatchOptions(quiet=True)
    assert batch.run_batch(photos, masks, tmp_path / "out", config, options) == 0
    assert "1 done" in capsys.readouterr().err
    src, res = (np.asarray(_open(d / "p.png")) for d in (photos, tmp_path / "out"))
    hole = np.asarray(_open(masks / "p.png")) > 0
    assert np.array_equal(src[~hole], res[~hole])


def test_engine_that_cannot_start_stops_the_run(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    _save(photos / "p.png", _photo(24, 24, 3))
    _mask(masks / "p.png", 24, 24)
    config = InpaintConfig(prior=str(tmp_path / "missing.pt"), progress=False)
    with pytest.raises(NPSError, match="not found"):
        batch.run_batch(photos, masks, tmp_path / "out", config)
    report = (tmp_path / "out" / "nps-report.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in report] == ["started", "interrupted"]


def test_report_is_appended_and_locked(tmp_path):
    path = tmp_path / "r" / "report.jsonl"
    for n in range(2):
        with batch.Report(path) as report:
            report.write({"path": f"p{n}", "status": "done"})
            if n == 1:
                with pytest.raises(NPSError, match="another nps batch run"):
                    batch.Report(path)
    assert [json.loads(line)["path"] for line in path.read_text().splitlines()] == ["p0", "p1"]


def _lines(report: Path) -> list[dict]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def test_a_started_line_comes_before_each_result(archive, tmp_path):
    photos, masks = archive
    out = tmp_path / "out"
    _batch(photos, masks, out, "--recursive")
    lines = _lines(out / "nps-report.jsonl")
    for rel in DONE | set(FAILED):
        mine = [r for r in lines if r["path"] == str(photos / rel)]
        assert [r["status"] for r in mine] == ["started", "done" if rel in DONE else "failed"]
        assert mine[0]["pid"] == os.getpid() and mine[0]["time"] <= mine[1]["time"]


def test_a_photo_that_killed_nps_twice_is_failed_and_not_retried(archive, tmp_path, capsys):
    photos, masks = archive
    out = tmp_path / "out"
    out.mkdir()
    started = [json.dumps({"path": str(photos / name), "status": "started",
                           "output": str(out / name), "pid": 1}) for name in ("b.png", "a.jpg")]
    (out / "nps-report.jsonl").write_text("\n".join([started[0], started[1], started[0]]) + "\n")
    assert _batch(photos, masks, out) == 1
    records = _records(out / "nps-report.jsonl", photos)
    b = records["b.png"]
    assert b["status"] == "failed" and b["crash"] == "killed while processing"
    assert "started 2 times without a result" in b["error"] and "--retry-failed" in b["error"]
    assert records["a.jpg"]["status"] == "done"  # started once: retried
    assert not (out / "b.png").exists()
    assert "nps: failed:" in capsys.readouterr().err
    assert _batch(photos, masks, out) == 1  # later runs do not retry it either
    b = _records(out / "nps-report.jsonl", photos)["b.png"]
    assert b["status"] == "failed" and "in an earlier run" in b["error"]
    assert not (out / "b.png").exists()
    _batch(photos, masks, out, "--retry-failed")
    assert _records(out / "nps-report.jsonl", photos)["b.png"]["status"] == "done"


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gave up waiting for {what}: {proc.stderr.read()}")
        time.sleep(0.002)


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "neural_patch_synth.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _report_lines(report: Path) -> list[dict]:
    """The complete lines of a report being written."""
    if not report.exists():
        return []
    return [json.loads(line) for line in report.read_text().splitlines(keepends=True)
            if line.endswith("\n")]


def test_a_dead_worker_is_replaced_and_the_run_goes_on(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    for i in range(4):
        _save(photos / f"p{i}.png", _photo(24, 24, i))
        _mask(masks / f"p{i}.png", 24, 24)
    out = tmp_path / "out"
    report = out / "nps-report.jsonl"
    proc = _cli("batch", str(photos), "--masks", str(masks), "-o", str(out), "--workers", "2",
                *FAST)
    _wait_for(lambda: any(r["status"] == "started" for r in _report_lines(report)),
              "a started line", proc)
    victim = next(r for r in _report_lines(report) if r["status"] == "started")
    os.kill(victim["pid"], signal.SIGKILL)  # as the kernel's OOM killer would
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    records = _records(report, photos)
    killed = Path(victim["path"]).name
    assert records[killed]["status"] == "failed"
    assert "worker processing this photo died (killed by SIGKILL" in records[killed]["error"]
    assert {name: r["status"] for name, r in records.items() if name != killed} == {
        f"p{i}.png": "done" for i in range(4) if f"p{i}.png" != killed}
    assert "3 done, 0 skipped, 1 failed" in err and "Traceback" not in err
    assert _batch(photos, masks, out) == 1  # not retried: it may kill its worker again
    assert "in an earlier run" in _records(report, photos)[killed]["error"]
    assert _batch(photos, masks, out, "--retry-failed") == 0
    assert _records(report, photos)[killed]["status"] == "done"


def test_sigkill_mid_run_then_resume(tmp_path):
    """A real ``kill -9`` of ``nps batch`` while it writes, then the same command again."""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    rng = np.random.default_rng(0)
    names = [f"p{i}.png" for i in range(6)]
    for name in names:  # noise: slow enough to encode that the kill lands mid-photo
        _save(photos / name, rng.integers(0, 256, (500, 500, 3), dtype=np.uint8))
        _mask(masks / name, 500, 500)
    out = tmp_path / "out"
    report = out / "nps-report.jsonl"
    args = ("batch", str(photos), "--masks", str(masks), "-o", str(out), *FAST)
    proc = _cli(*args)

    def mid_photo() -> bool:
        lines = _report_lines(report)
        writing = out.is_dir() and any(p.name.endswith(".part") for p in out.iterdir())
        done = sum(r["status"] == "done" for r in lines)
        return done >= 1 and lines[-1]["status"] == "started" and (writing or done >= 3)

    _wait_for(mid_photo, "a photo in progress", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _report_lines(report)
    finished = {r["path"] for r in first if r["status"] == "done"}
    cut = {r["path"] for r in first if r["status"] == "started"} - finished
    assert len(finished) >= 1 and len(cut) <= 1
    present = {str(photos / n) for n in names if (out / n).exists()}
    assert finished <= present  # renamed into place before its line was written, at most

    again = _cli(*args)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert not list(out.rglob("*.part"))
    for name in names:
        with Image.open(out / name) as img:
            img.load()
            assert img.size == (500, 500)
    second = _lines(report)[len(first):]
    results = {r["path"]: r["status"] for r in second if r["status"] in RESULTS}
    assert results == {str(photos / n): "skipped" if str(photos / n) in present else "done"
                       for n in names}
    for path in cut - present:  # the photo the kill cut short is done from the start
        assert [r["status"] for r in second if r["path"] == path] == ["started", "done"]


def test_cleanup_never_touches_temporary_files_of_live_runs(archive, tmp_path):
    photos, masks = archive
    out = tmp_path / "out"
    out.mkdir()
    with batch.RunLock(out) as live:  # e.g. a shard still running
        theirs = out / f".b.png.{live.id}-abcd1234.part"
        theirs.write_bytes(b"in progress")
        dead = out / ".a.jpg.0badc0de-abcd1234.part"
        dead.write_bytes(b"left by a killed run")
        (out / batch.RUNS_DIR / "0badc0de.lock").touch()  # its lock, no longer held
        for extra in ([], ["--shard", "1/1"], ["--shard", "2/2"], ["--shard", "1/3"]):
            _batch(photos, masks, out, *extra)
            assert theirs.read_bytes() == b"in progress"
        assert not dead.exists() and not (out / batch.RUNS_DIR / "0badc0de.lock").exists()
    _batch(photos, masks, out)  # that run has ended (killed, say): its leftover goes now
    assert not theirs.exists()
    assert list((out / batch.RUNS_DIR).iterdir()) == []


def test_changed_photo_mask_or_settings_is_redone_and_the_old_output_kept(tmp_path, capsys):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    names = ["p.png", "q.png", "r.png"]
    for i, name in enumerate(names):
        _save(photos / name, _photo(24, 24, i))
        _mask(masks / name, 24, 24)
    assert _batch(photos, masks, out) == 0
    first = {name: (out / name).read_bytes() for name in names}
    assert _batch(photos, masks, out) == 0
    assert _statuses(_records(out / "nps-report.jsonl", photos)) == dict.fromkeys(names, "skipped")

    hole = np.zeros((24, 24), np.uint8)
    hole[2:8, 14:20] = 255
    Image.fromarray(hole).save(masks / "p.png")  # a new mask
    _save(photos / "q.png", _photo(24, 24, 9))  # a new photo under the same name
    os.utime(photos / "r.png", ns=(10**9, 10**9))  # touched, same bytes
    capsys.readouterr()
    assert _batch(photos, masks, out) == 0
    records = _records(out / "nps-report.jsonl", photos)
    assert _statuses(records) == {"p.png": "done", "q.png": "done", "r.png": "skipped"}
    assert records["p.png"]["changed"] == ["mask"] and records["q.png"]["changed"] == ["photo"]
    for name in ("p.png", "q.png"):
        backup = Path(records[name]["replaced"])
        assert backup == out / ".nps-stale" / name.replace(".png", ".prev-1.png")
        assert backup.read_bytes() == first[name] and (out / name).read_bytes() != first[name]
    err = capsys.readouterr().err
    assert "redone (mask changed)" in err and "2 done (2 redone), 1 skipped" in err

    assert _batch(photos, masks, out, "--seed", "7") == 0  # other settings: all redone
    records = _records(out / "nps-report.jsonl", photos)
    assert {r["status"] for r in records.values()} == {"done"}
    assert all(r["changed"] == ["settings"] for r in records.values())
    assert (out / ".nps-stale" / "p.prev-2.png").is_file()

    _save(photos / "q.png", _photo(30, 20, 4))  # another size: its old output is not finished
    _mask(masks / "q.png", 30, 20)
    (out / "r.png").write_bytes((out / "r.png").read_bytes()[:40])  # our output, damaged
    assert _batch(photos, masks, out, "--seed", "7") == 0
    records = _records(out / "nps-report.jsonl", photos)
    assert records["q.png"]["changed"] == ["photo", "mask"]
    assert records["r.png"]["changed"] == ["output"]
    assert Image.open(out / "q.png").size == (30, 20)

    older = tmp_path / "older"  # outputs of a run that kept no fingerprints: skipped as before
    older.mkdir()
    (older / "p.png").write_bytes((out / "p.png").read_bytes())
    _batch(photos / "p.png", masks, older, "--seed", "8")
    assert _statuses(_records(older / "nps-report.jsonl", photos)) == {"p.png": "skipped"}


def test_unwritable_output_folder_stops_before_any_photo(archive, tmp_path, unwritable_dir,
                                                         monkeypatch, capsys):
    def computed(*args, **kwargs):
        raise AssertionError("a photo was computed")

    monkeypatch.setattr(batch.Inpainter, "photo", computed)
    photos, masks = archive
    report = tmp_path / "r.jsonl"
    assert _batch(photos, masks, unwritable_dir, "--report", str(report)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write in the output folder" in err
    assert not report.exists()


def test_exit_codes_separate_failed_photos_from_internal_errors(archive, tmp_path, monkeypatch,
                                                                capsys):
    photos, masks = archive

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(batch, "load_mask", boom)  # one photo's crash: a failed photo
    assert _batch(photos, masks, tmp_path / "out") == 1
    records = _records(tmp_path / "out" / "nps-report.jsonl", photos)
    assert records["b.png"]["error"] == "internal error: RuntimeError: a bug"
    monkeypatch.setattr(batch, "find_inputs", boom)  # the run's own crash
    capsys.readouterr()
    assert _batch(photos, masks, tmp_path / "out2") == 3
    err = capsys.readouterr().err.strip()
    assert err == "nps: internal error: RuntimeError: a bug (set NPS_DEBUG=1 for a traceback)"


def test_ray_without_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "neural_patch_synth.ray_batch", raising=False)
    assert main(["batch", str(tmp_path), "--masks", str(tmp_path), "-o", str(tmp_path / "out"),
                 "--ray"]) == 2
    err = capsys.readouterr().err
    assert err == ("nps: error: --ray needs the ray extra: "
                   "pip install 'neural_patch_synth[ray]'\n")
