"""The benchmark harness end to end on tiny fake data, the sheets, the blind mode, and the
metrics on hand-made cases."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from neural_patch_synth.bench import blind, datasets, metrics, report, sheets
from neural_patch_synth.bench import methods as methods_mod
from neural_patch_synth.bench.datasets import CATEGORIES, Case, data_root
from neural_patch_synth.bench.methods import METHODS, Method
from neural_patch_synth.bench.run import (
    ROWS,
    SPEED,
    SUITES,
    Suite,
    fill_row,
    read_jsonl,
    run_bench,
    run_speed,
    select_methods,
    suite_cases,
)
from neural_patch_synth.cli import main as cli_main
from neural_patch_synth.errors import NPSError
from tests.conftest import DATA

QUICK_CATEGORIES = [CATEGORIES[c] for c in SUITES["quick"].categories]
QUICK_CASES = 2 + len(QUICK_CATEGORIES) + 3 + 2
"""Cases of the quick suite on the tiny data: 2 Kodak crops, one mask per quick category (one
exists per category), 3 scenes, 2 Kodak photos to extend back."""
TINY_SIDE = 96


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A tiny data tree: 2 Kodak stand-ins, one mask per category, 3 scene photos; Kodak
    centre crops of :data:`TINY_SIDE` px (the real 512 is checked on the shared data)."""
    monkeypatch.setattr(datasets, "KODAK_SIDE", TINY_SIDE)
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for folder in ("kodak", "masks/irregular", "scenes/val"):
        (root / folder).mkdir(parents=True)
    for i, size in enumerate([(48, 32), (32, 48)]):
        img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "kodak" / f"kodim{i + 1:02d}.png")
    for cat in range(len(CATEGORIES)):
        mask = np.zeros((64, 64), np.uint8)
        mask[8:16 + 6 * cat, 10:40] = 255
        Image.fromarray(mask).save(root / "masks/irregular" / f"{cat * 2000 + 5:05d}.png")
    for name in ("forest_1", "sea_2", "street_3"):
        img = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "scenes/val" / f"{name}.jpg")
    monkeypatch.setenv("NPS_DATA", str(root))
    return root


@pytest.fixture
def dummies(monkeypatch):
    """Stand-in methods: mean fill, identity (leaves the zeroed hole), and a call counter."""
    calls: list[str] = []

    def mean_fill(image, mask):
        """Mean colour of the known pixels."""
        calls.append("mean-fill")
        out = image.copy()
        out[mask] = image[~mask].mean(axis=0).round().astype(np.uint8)
        return out

    def identity(image, mask):
        """Returns the input unchanged."""
        calls.append("identity")
        return image

    monkeypatch.setitem(METHODS, "mean-fill", Method("mean-fill", mean_fill))
    monkeypatch.setitem(METHODS, "identity", Method("identity", identity))
    return calls


@pytest.fixture
def one_photo(monkeypatch):
    """The quick suite cut to one case per data set (for tests about single fills)."""
    monkeypatch.setitem(SUITES, "quick", Suite(kodak_centre=1, per_category=1, categories=(3,),
                                               scenes=1, sizes=()))


def bench_args(out, suite="quick", methods=("mean-fill", "identity"), blind=None,
               options=None):
    return argparse.Namespace(suite=suite, out=str(out), methods=list(methods), device="cpu",
                              quiet=True, blind=blind, score_blind=None, options=options)


def test_harness_end_to_end_and_resume(data, dummies, tmp_path):
    out = tmp_path / "out"
    assert run_bench(bench_args(out)) == 0
    results = json.loads((out / "results.json").read_text())
    cases = QUICK_CASES
    assert len(results["rows"]) == 2 * cases == len(dummies)
    row = results["rows"][0]
    for key in ("method", "dataset", "image", "mask", "l1", "l2", "psnr", "ssim", "sharpness",
                "swd", "swd_half", "saturation", "seam", "seconds"):
        assert key in row
    assert {r["category"] for r in results["rows"] if r["dataset"] == "kodak-irregular"} == set(
        QUICK_CATEGORIES)
    assert {(r["width"], r["height"]) for r in results["rows"]
            if r["dataset"] == "kodak-centre"} == {(TINY_SIDE, TINY_SIDE)}
    summary = (out / "summary.md").read_text()
    assert "### kodak-centre" in summary and "by hole-area category" in summary
    assert "## Headline" in summary and "| method | PSNR dB | SSIM | sharpness | SWD | SWD ½ | " \
        "saturation | seam | s / image |" in summary
    assert "SWD ½ by hole-area category" in summary
    assert "**" in summary
    assert (out / "by_category.png").stat().st_size > 0
    assert len(list((out / "pictures").glob("*.png"))) == 8  # 2 per data set
    assert not (out / "look").exists()  # neither nps nor patchmatch ran: nothing to look at
    # mean fill beats leaving the hole black
    by = {(r["method"], r["image"], r["mask"]): r for r in results["rows"]}
    assert all(by[("mean-fill", i, m)]["l1"] < r["l1"]
               for (meth, i, m), r in by.items() if meth == "identity")

    dummies.clear()
    assert run_bench(bench_args(out)) == 0
    assert dummies == []  # everything was already done
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 2 * cases


def test_resume_after_interruption(data, dummies, one_photo, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = METHODS["identity"].fn

    def flaky(image, mask):
        if len(dummies) >= 5:
            raise KeyboardInterrupt
        return real(image, mask)

    monkeypatch.setitem(METHODS, "identity", Method("identity", flaky))
    with pytest.raises(KeyboardInterrupt):
        run_bench(bench_args(out))
    assert len((out / ROWS).read_text().splitlines()) == 5
    monkeypatch.setitem(METHODS, "identity", Method("identity", real))
    dummies.clear()
    assert run_bench(bench_args(out)) == 0
    assert len(dummies) == 2 * 3 - 5  # 3 cases, 2 methods
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 2 * 3


def test_failed_fill_is_recorded(data, dummies, one_photo, tmp_path, monkeypatch):
    def broken(image, mask):
        """Always fails."""
        raise RuntimeError("boom")

    monkeypatch.setitem(METHODS, "broken", Method("broken", broken))
    out = tmp_path / "out"
    assert run_bench(bench_args(out, methods=("mean-fill", "broken"))) == 1
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert all(r["error"] == "RuntimeError: boom" for r in rows if r["method"] == "broken")
    assert "fill(s) failed" in (out / "summary.md").read_text()


def test_skips_are_noted_only_for_data_sets_in_the_suite(data, dummies, tmp_path, monkeypatch):
    monkeypatch.setitem(SUITES, "quick", Suite(
        kodak_centre=1, per_category=1, categories=(3,), scenes=1, sizes=(),
        skip={"identity": ("scenes-128", "kodak-outpaint")}))  # no outpainting cases here
    out = tmp_path / "out"
    assert run_bench(bench_args(out)) == 0
    summary = (out / "summary.md").read_text()
    assert "`identity` is not run on scenes-128 in the quick suite" in summary
    assert "kodak-outpaint" not in summary
    assert {(r["method"], r["dataset"]) for r in json.loads(
        (out / "results.json").read_text())["rows"]} == {
        (m, d) for m in ("mean-fill", "identity")
        for d in ("kodak-centre", "kodak-irregular", "scenes-128")} - {("identity", "scenes-128")}


def test_options_reach_nps_and_are_recorded(data, dummies, one_photo, tmp_path):
    out = tmp_path / "out"
    assert run_bench(bench_args(out, methods=("mean-fill",),
                                options='{"guide_weight": 0, "em_iterations": [4, 2]}')) == 0
    assert methods_mod._nps_options["guide_weight"] == 0
    assert json.loads((out / "run.json").read_text())["nps"] == {
        "guide_weight": 0, "em_iterations": [4, 2]}
    assert "nps settings: guide_weight=0, em_iterations=(4, 2);" in (out / "summary.md").read_text()
    with pytest.raises(NPSError, match="different setup"):  # other options, same folder
        run_bench(bench_args(out, methods=("mean-fill",), options='{"guide_weight": 1}'))
    for bad, message in (('{"guide_weight": ', "not valid JSON"), ("[1]", "JSON object"),
                         ('{"guide_wieght": 1}', "unknown option"),
                         ('{"guide_reach": 0}', "guide_reach")):
        with pytest.raises(NPSError, match=message):
            run_bench(bench_args(tmp_path / "other", methods=("mean-fill",), options=bad))


def test_resume_refuses_other_engine_settings(data, dummies, one_photo, tmp_path, monkeypatch):
    """Same options, but other content-network weights: the fills would differ, so the
    folder is refused rather than resumed (as for a change of the engine's defaults)."""
    out = tmp_path / "out"
    assert run_bench(bench_args(out, methods=("mean-fill",))) == 0
    assert run_bench(bench_args(out, methods=("mean-fill",))) == 0  # unchanged: resumes
    weights = tmp_path / "retrained.pt"
    weights.write_bytes(b"other weights")
    monkeypatch.setenv("NPS_CONTENT_WEIGHTS", str(weights))
    with pytest.raises(NPSError, match="different setup \\(engine settings"):
        run_bench(bench_args(out, methods=("mean-fill",)))


def test_bad_input(data, dummies, one_photo, tmp_path, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(NPSError, match="unknown method"):
        run_bench(bench_args(out, methods=("mean-fill", "nope")))
    run_bench(bench_args(out, methods=("mean-fill",)))
    with pytest.raises(NPSError, match="different setup"):
        run_bench(bench_args(out, suite="full", methods=("mean-fill",)))
    monkeypatch.setenv("NPS_DATA", str(tmp_path / "missing"))
    with pytest.raises(NPSError, match="NPS_DATA"):
        data_root()


def test_missing_package_is_skipped(monkeypatch):
    monkeypatch.setitem(METHODS, "ghost", Method("ghost", lambda i, m: i,
                                                 needs=("no_such_module_for_nps",)))
    runnable, notes = select_methods(["ghost", "telea"])
    assert "ghost" not in runnable and "no_such_module_for_nps" in notes[0]


def test_classical_methods_fill_the_hole():
    pytest.importorskip("cv2")
    image = np.full((32, 32, 3), 120, np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[10:20, 10:20] = True
    given = np.where(mask[..., None], 0, image).astype(np.uint8)
    for name in ("telea", "ns"):
        out = METHODS[name].fn(given, mask)
        assert out.dtype == np.uint8 and abs(int(out[15, 15, 0]) - 120) <= 2


def test_speed_section(data, tmp_path):
    """End-to-end rows per size with the nps / PatchMatch ratio (stand-ins, no search)."""
    def slow(image, mask):
        """Stand-in."""
        return image

    methods = {"nps": Method("nps", slow), "patchmatch": Method("patchmatch", slow)}
    suite = Suite(kodak_centre=1, per_category=1, categories=(0,), scenes=1, sizes=(32, 64))
    run_speed(data, suite, methods, tmp_path, "cpu", quiet=True)
    rows = read_jsonl(tmp_path / SPEED)
    assert {(r["size"], r["method"]) for r in rows} == {(s, m) for s in (32, 64) for m in methods}
    table = "\n".join(report.speed_tables(rows))
    assert "| 64² |" in table and "nps / patchmatch" in table


def test_metrics_by_hand():
    truth = np.zeros((16, 16, 3), np.uint8)
    result = truth.copy()
    mask = np.zeros((16, 16), bool)
    mask[4:6, 4:6] = True
    result[4, 4], result[4, 5], result[5, 4], result[5, 5] = 51, 102, 0, 255  # 0.2, 0.4, 0, 1
    assert metrics.hole_l1(result, truth, mask) == pytest.approx(40.0)
    assert metrics.hole_l2(result, truth, mask) == pytest.approx(30.0)  # (.04+.16+0+1) / 4
    assert metrics.hole_psnr(result, truth, mask) == pytest.approx(10 * math.log10(1 / 0.3))
    assert metrics.hole_psnr(truth, truth, mask) == metrics.MAX_PSNR
    assert metrics.hole_ssim(truth, truth, mask) == pytest.approx(1.0)
    assert metrics.hole_box(mask) == (slice(0, 11), slice(0, 11))


def test_ssim_matches_skimage():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(a / 255, b / 255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1, channel_axis=-1)
    assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert metrics.ssim(a, a) == pytest.approx(1.0)


# --- texture measures on hand-made fills ---------------------------------------------------

@pytest.fixture
def texture():
    """A colourful smooth-noise photo ``(64, 64, 3)`` uint8, a 32² hole, and a fill helper."""
    rng = np.random.default_rng(0)
    raw = ndimage.gaussian_filter(rng.random((64, 64, 3)), (1.0, 1.0, 0))
    truth = np.round((raw - raw.min()) / (raw.max() - raw.min()) * 255).astype(np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True

    def fill(inside: np.ndarray) -> np.ndarray:
        return np.where(mask[..., None], np.clip(np.round(inside), 0, 255), truth).astype(np.uint8)

    return truth, mask, fill


def test_identical_fill_is_perfect(texture):
    truth, mask, _ = texture
    m = metrics.hole_metrics(truth, truth, mask)
    assert m["sharpness"] == pytest.approx(1.0) and m["saturation"] == pytest.approx(1.0)
    assert m["swd"] == 0.0 and m["swd_half"] == 0.0


def test_blurred_grey_and_noisy_fills(texture):
    truth, mask, fill = texture
    blurred = metrics.hole_metrics(fill(ndimage.gaussian_filter(truth.astype(float), (2, 2, 0))),
                                   truth, mask)
    assert blurred["sharpness"] < 0.5 and blurred["swd"] > 1.0 and blurred["swd_half"] > 1.0
    grey = metrics.hole_metrics(fill(np.repeat(truth.mean(2, keepdims=True), 3, 2)), truth, mask)
    assert grey["saturation"] < 0.1
    noise = np.random.default_rng(1).normal(0, 25, truth.shape)
    noisy = metrics.hole_metrics(fill(truth + noise), truth, mask)
    assert noisy["sharpness"] > 1.3 and noisy["swd"] > 0


def summary_row(method: str, **values) -> dict:
    return {"method": method, "dataset": "set", "image": "a", "mask": "centre", "category": None,
            "width": 64, "height": 64, "hole": 0.25, **values}


def test_hole_too_small_for_swd_and_the_tables_render(texture, tmp_path):
    """A 5² hole holds no 7×7 patch: SWD is NaN, stored as null, left out of the means."""
    truth, _, fill = texture
    tiny = np.zeros((64, 64), bool)
    tiny[30:35, 30:35] = True
    assert math.isnan(metrics.patch_swd(truth, truth, tiny))
    assert math.isnan(metrics.patch_swd(truth, truth, tiny, half=True))

    def grey(image, mask):
        """Grey fill."""
        return np.where(mask[..., None], 128, image).astype(np.uint8)

    small = fill_row(Method("grey", grey), Case("set", tmp_path / "a.png"), truth, tiny, False,
                     None)
    assert small["swd"] is None and small["swd_half"] is None and small["sharpness"] > 0
    json.dumps(small, allow_nan=False)  # strict JSON
    rows = [small, {**small, "image": "b", "swd": float("nan"), "swd_half": 3.0},
            {**small, "image": "c", "swd": 2.5, "swd_half": 3.5}]
    lines = report.dataset_tables(rows, ["grey"]) + report.headline_tables(rows, ["grey"])
    grey_lines = [line for line in lines if line.startswith("| grey |")]
    assert len(grey_lines) == 2
    assert "| 2.50 |" in grey_lines[0]  # SWD: the one finite value, no ± (nan and None out)
    assert "| 3.25 ± 0.35 |" in grey_lines[0]  # SWD ½ over the two finite values
    cells = grey_lines[1].split(" | ")
    assert cells[4] == "2.50" and cells[5] == "3.25"


def test_best_is_closest_to_one_for_ratios_and_lowest_for_swd():
    rows = [summary_row("blurry", psnr=20.0, sharpness=0.5, swd=4.0, saturation=0.7),
            summary_row("close", psnr=18.0, sharpness=1.1, swd=2.0, saturation=0.95),
            summary_row("noisy", psnr=17.0, sharpness=1.6, swd=3.0, saturation=1.02)]
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ")
             for line in report.headline_tables(rows, ["blurry", "close", "noisy"])
             if line.startswith("| ") and not line.startswith("| method")}
    # columns: method, PSNR, SSIM, sharpness, SWD, SWD ½, saturation, s / image
    assert cells["blurry"][1] == "**20.00**"  # highest PSNR
    assert cells["close"][3] == "**1.10**" and cells["blurry"][3] == "0.50"  # not the lowest
    assert cells["noisy"][3] == "1.60"  # nor the highest
    assert cells["close"][4] == "**2.00**"  # lowest SWD
    assert cells["noisy"][6] == "**1.02**" and cells["close"][6] == "0.95"


def test_speed_target_line():
    def rows(nps, pm):
        return [{"section": "end-to-end", "size": size, "method": m, "seconds": t, "peak_mb": 1}
                for size, m, t in [(256, "nps", 1.0), (512, "nps", nps), (512, "patchmatch", pm)]]

    assert "= 0.50× — met" in report.speed_target(rows(10.0, 20.0))
    assert "= 1.50× — not met" in report.speed_target(rows(30.0, 20.0))
    assert report.speed_target(rows(30.0, 20.0)[:2]) is None  # no PatchMatch at 512²
    assert "= 1.50× — not met" in "\n".join(report.speed_tables(rows(30.0, 20.0)))


# --- look sheets and the blind mode ---------------------------------------------------------

BLACK = (0, 0, 0)


def look_scale(crop: np.ndarray) -> int:
    """Look panels are enlarged ×2 when that still fits LOOK_MAX (the 128² scenes)."""
    return 2 if 2 * max(crop.shape) <= sheets.LOOK_MAX else 1


def hole_colour(path, mask: np.ndarray, panel: int) -> tuple[int, int, int]:
    """Colour of a hole pixel in panel ``panel`` (0 = input) of a look or blind sheet."""
    crop = mask[sheets.look_box(mask)]
    scale = look_scale(crop)
    ys, xs = np.nonzero(crop)
    y, x = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    sheet = Image.open(path).convert("RGB")
    top = sheet.height - crop.shape[0] * scale
    return sheet.getpixel((panel * crop.shape[1] * scale + x * scale, top + y * scale))


def test_look_sheets_and_blind_mode(data, dummies, tmp_path, capsys):
    """Look and blind sheets for every case; the key unblinds: the sheet's left panel is the
    key's left method, and a judge who always picks mean-fill's side scores 100 % for it."""
    out = tmp_path / "out"
    assert run_bench(bench_args(out, blind="mean-fill,identity")) == 0
    cases = {c.key: c for c in suite_cases(SUITES["quick"], data)}
    looks = sorted((out / "look").glob("*.png"))
    assert len(looks) == len(cases) == QUICK_CASES
    for case in cases.values():
        path = sheets.look_path(out, case)
        _, mask = case.load()
        crop = mask[sheets.look_box(mask)]  # input | mean-fill | identity | truth:
        assert Image.open(path).width == 4 * crop.shape[1] * look_scale(crop)
        assert hole_colour(path, mask, 0) in {(255, 255, 255), (200, 200, 200)}  # checkered
        assert hole_colour(path, mask, 1) != BLACK and hole_colour(path, mask, 2) == BLACK

    key = json.loads((out / blind.KEY).read_text())
    assert key["pair"] == ["mean-fill", "identity"] and len(key["cases"]) == QUICK_CASES
    assert len(list((out / blind.FOLDER).glob("case-*.png"))) == QUICK_CASES
    for number, entry in key["cases"].items():
        _, mask = cases[(entry["dataset"], entry["image"], entry["mask"])].load()
        sheet = out / blind.FOLDER / f"case-{number}.png"
        left_black = hole_colour(sheet, mask, 1) == BLACK
        assert left_black == (entry["left"] == "identity")
        assert (hole_colour(sheet, mask, 2) == BLACK) == (entry["right"] == "identity")

    answers = out / blind.ANSWERS
    assert answers.read_text().count(": \n") == QUICK_CASES  # the empty template
    judged = "".join(f"{n}: {'left' if e['left'] == 'mean-fill' else 'right'}  looks filled\n"
                     for n, e in key["cases"].items())
    answers.write_text("# my answers\n" + judged)
    counts = blind.tally(key, blind.read_answers(answers))
    assert counts["all"] == {"cases": QUICK_CASES, "answered": QUICK_CASES,
                             "mean-fill": QUICK_CASES, "identity": 0, "tie": 0}
    assert counts["scenes-128"]["mean-fill"] == 3 and list(counts)[-1] == "all"
    assert cli_main(["bench", "--score-blind", str(out)]) == 0
    assert f"| all | {QUICK_CASES} | {QUICK_CASES} | {QUICK_CASES} (100 %) | 0 (0 %) |" in (
        capsys.readouterr().out)
    assert blind.main([str(out)]) == 0 and "mean-fill preferred" in capsys.readouterr().out

    # a rerun keeps the answers; a missing kept fill is made again, and only that one
    kept = sheets.output_path(out, next(iter(cases.values())), "mean-fill")
    kept.unlink()
    dummies.clear()
    assert run_bench(bench_args(out, blind="mean-fill,identity")) == 0
    assert dummies == ["mean-fill"] and kept.exists()
    assert answers.read_text() == "# my answers\n" + judged
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 2 * QUICK_CASES
    with pytest.raises(NPSError, match="holds answers"):  # another pair: another key
        run_bench(bench_args(out, blind="identity,mean-fill"))
    Image.new("RGB", Image.open(kept).size, "red").save(kept)  # other fills, same cases
    with pytest.raises(NPSError, match="other fills"):
        run_bench(bench_args(out, blind="mean-fill,identity"))
    assert answers.read_text() == "# my answers\n" + judged


def test_blind_sides_are_seeded_and_balanced(tmp_path):
    cases = [Case("set", tmp_path / f"img{i}.png") for i in range(9)]
    key = blind.make_key(cases, ("a", "b"))
    assert key == blind.make_key(cases, ("a", "b"))  # seeded
    lefts = [e["left"] for e in key["cases"].values()]
    assert list(key["cases"]) == [f"{i:02d}" for i in range(1, 10)]
    assert lefts.count("a") == 5 and lefts.count("b") == 4  # both sides, balanced
    assert all({e["left"], e["right"]} == {"a", "b"} for e in key["cases"].values())


def test_blind_answers_are_checked(tmp_path):
    key = blind.make_key([Case("set", tmp_path / f"img{i}.png") for i in range(3)], ("a", "b"))
    path = tmp_path / "answers.md"
    path.write_text("01: left\n02:\n03: TIE\n")
    assert blind.read_answers(path) == {1: "left", 3: "tie"}
    assert "| all | 3 | 2 |" in "\n".join(blind.score_table(key, blind.read_answers(path)))
    for text, error in [("01: maybe\n", "not left, right or tie"),
                        ("01: left\n1: right\n", "answered twice")]:
        path.write_text(text)
        with pytest.raises(NPSError, match=error):
            blind.read_answers(path)
    path.write_text("07: left\n")
    with pytest.raises(NPSError, match="does not hold"):
        blind.score_table(key, blind.read_answers(path))
    with pytest.raises(NPSError, match="two different method names"):
        blind.parse_pair("nps,nps")


def test_look_box():
    mask = np.zeros((100, 200), bool)
    mask[10:30, 40:80] = True
    assert sheets.look_box(mask) == (slice(0, 40), slice(20, 100))  # +10 rows, +20 columns
    wide = np.zeros((100, 900), bool)
    wide[40:60, 100:800] = True  # 700 wide: cut to 512 around the hole's centre
    assert sheets.look_box(wide) == (slice(30, 70), slice(194, 706))


def test_save_picture_replaces_through_a_temporary_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    first, second = (rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(2))
    path = tmp_path / "new" / "fill.png"
    sheets.save_picture(first, path)  # the folder is made
    sheets.save_picture(Image.fromarray(second), path)  # replaced, lossless
    assert np.array_equal(np.asarray(Image.open(path)), second)
    assert [p.name for p in path.parent.iterdir()] == ["fill.png"]

    def broken(self, f, *args, **kwargs):
        f.write(b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(NPSError, match="disk full"):
        sheets.save_picture(first, path)
    assert np.array_equal(np.asarray(Image.open(path)), second)  # the old one is whole
    assert [p.name for p in path.parent.iterdir()] == ["fill.png"]


# --- the suites on the shared data ----------------------------------------------------------

def test_suites_measure_what_the_issue_asks(kodak_dir):
    quick, full = (suite_cases(SUITES[name], DATA) for name in ("quick", "full"))

    def count(cases, dataset):
        return [c for c in cases if c.dataset == dataset]

    assert len(count(quick, "kodak-centre")) == 6 and len(count(full, "kodak-centre")) == 24
    assert all(c.side == 512 and c.mask_path is None for c in count(full, "kodak-centre"))
    irregular = count(quick, "kodak-irregular")
    assert sorted(c.category for c in irregular) == ["30–40 %"] * 3 + ["40–50 %"] * 3
    assert len({c.image_id for c in irregular}) == 6 and all(c.side is None for c in irregular)
    assert len(count(full, "kodak-irregular")) == 24
    assert {c.category for c in count(full, "kodak-irregular")} == set(CATEGORIES)
    assert len(count(quick, "scenes-128")) == 20 and len(count(full, "scenes-128")) == 100
    for dataset in ("kodak-centre", "scenes-128"):  # the quick cases are among the full ones
        assert {c.key for c in count(quick, dataset)} <= {c.key for c in count(full, dataset)}
    assert [c.key for c in quick] == [c.key for c in suite_cases(SUITES["quick"], DATA)]
    kodak = suite_cases(SUITES["kodak"], DATA)  # the issue's two Kodak sets, in full
    assert {c.dataset for c in kodak} == {"kodak-centre", "kodak-irregular"}
    assert {c.key for c in count(kodak, "kodak-centre")} == {
        c.key for c in count(full, "kodak-centre")}
    kodak_irregular = count(kodak, "kodak-irregular")
    assert sorted(c.category for c in kodak_irregular) == ["30–40 %"] * 6 + ["40–50 %"] * 6
    assert len({c.image_id for c in kodak_irregular}) == 12
    image, mask = count(quick, "kodak-centre")[0].load()
    assert image.shape == (512, 512, 3) and mask.sum() == 256 * 256 and mask[256, 256]
    photo, hole = irregular[0].load()
    assert photo.shape[:2] in {(512, 768), (768, 512)} and hole.shape == photo.shape[:2]


@pytest.mark.parametrize("module", ["main_job", "speed"])
def test_scripts_refuse_bad_options_in_one_line(module, monkeypatch):
    """The main-job and speed scripts check ``--options`` as ``nps bench`` does: a bad name
    ends with one line naming it, before any data is read."""
    script = importlib.import_module(f"neural_patch_synth.bench.{module}")
    monkeypatch.setattr(sys, "argv", [module, "--options", '{"no_such_option": 1}'])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    message = str(exit_info.value.code)
    assert message.startswith(f"{module}: ") and "no_such_option" in message
    assert "\n" not in message


def test_means_table_gives_labels_count_and_means():
    groups = {("kodak", "2"): [{"psnr": 10.0, "swd": 1.0}, {"psnr": 13.0, "swd": 2.0}],
              ("scenes", "12"): [{"psnr": 7.125, "swd": 0.5}]}
    assert report.means_table(("set", "guide σ"), groups, ("psnr", "swd")) == [
        "| set | guide σ | cases | psnr | swd |",
        "|---|---|---|---|---|",
        "| kodak | 2 | 2 | 11.50 | 1.50 |",
        "| scenes | 12 | 1 | 7.12 | 0.50 |",
    ]
    groups = {("tiny",): [{"psnr": 9.0, "swd": math.nan}, {"psnr": 11.0, "swd": 3.0}],
              ("empty",): [{"psnr": 8.0, "swd": math.nan}]}  # NaN: no patch inside the hole
    assert report.means_table(("set",), groups, ("psnr", "swd"))[2:] == [
        "| tiny | 2 | 10.00 | 3.00 |", "| empty | 1 | 8.00 | – |"]
