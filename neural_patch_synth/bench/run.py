"""``nps bench``: run a suite, keep every result as it finishes, then write the report.

Results are appended to ``OUT/rows.jsonl`` and ``OUT/speed.jsonl`` one line at a time; a rerun
with the same ``--out`` skips every (method, data set, photo, mask) already there (unless a fill
that should be kept for the sheets is missing: that one is run again and its new row replaces
the old), and rebuilds ``results.json``, ``summary.md``, the pictures, the look sheets, the
blind sheets (``--blind``) and the plot from all of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from neural_patch_synth.api import resolve_device
from neural_patch_synth.batch import settings_digest
from neural_patch_synth.config import InpaintConfig
from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import write_text

from . import blind as blind_mod
from . import datasets, report, scaling, sheets
from .datasets import Case
from .meter import device_name, measure
from .methods import METHODS, Method, configure_nps, content_prior, nps_config, unavailable
from .metrics import hole_metrics

ROWS, SPEED, RUN = "rows.jsonl", "speed.jsonl", "run.json"
VGG_FILE = "vgg19_features_to_relu3_1.pth"
LOOK = ("nps", "patchmatch")
"""Methods whose fill of every case is kept and shown in the look sheets (with the blind pair)."""


@dataclass(frozen=True)
class Suite:
    kodak_centre: int | None
    """Kodak 512² centre crops with the 256² centre hole (None: all 24)."""
    per_category: int
    """Full-size Kodak cases per irregular-mask hole-area category."""
    categories: tuple[int, ...]
    """Hole-area categories run (0 = 1–10 % … 5 = 50–60 %)."""
    scenes: int
    """Scene photos at 128² with the 64² centre hole."""
    sizes: tuple[int, ...]
    """Square sizes of the end-to-end speed runs."""
    nps: dict[str, Any] = field(default_factory=dict)
    """InpaintConfig options every nps method uses in this suite (empty: the defaults)."""
    skip: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Method → data sets it is not run on in this suite (to keep within the time budget)."""
    pictures: int = 2
    """Comparison pictures per data set."""
    kodak_outpaint: int | None = 0
    """Full Kodak photos with a border cut away, extended back (None: all 24)."""


INPAINT_SETS = ("kodak-centre", "kodak-irregular", "scenes-128")
OUTPAINT_SKIP = {"mirror": INPAINT_SETS, "nps-no-blend": INPAINT_SETS,
                 "nps-poisson": ("kodak-irregular", "scenes-128", "kodak-outpaint"),
                 **{m: ("kodak-outpaint",) for m in ("telea", "ns", "biharmonic",
                                                     "nps-smooth-prior", "nps-optimise")}}
"""Methods not run on some data sets in every suite: mirror padding only extends a rectangle;
the blend that is not a command's default is measured on the centre crops (poisson) and on the
outpainting set (none), where the other equals ``nps``; the classical fills and the other nps
variants are left off the outpainting set (time budget)."""


def _skip(extra: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """:data:`OUTPAINT_SKIP` joined with a suite's own skips."""
    return {m: tuple(dict.fromkeys(OUTPAINT_SKIP.get(m, ()) + extra.get(m, ())))
            for m in {**OUTPAINT_SKIP, **extra}}


SUITES = {
    # What the sharp-fills issue measures, nps at its defaults: 6 Kodak 512² centre crops, 6
    # full Kodak photos with 30–40 % and 40–50 % irregular holes (3 each, 6 different photos),
    # 20 scenes, 4 Kodak photos extended back. The paper's L-BFGS method (nps-optimise, ~1 min
    # per crop on 2 cores) is left out on the full-size irregular photos to keep the suite under
    # an hour.
    "quick": Suite(kodak_centre=6, per_category=3, categories=(3, 4), scenes=20,
                   sizes=(256, 512), skip=_skip({"nps-optimise": ("kodak-irregular",)}),
                   kodak_outpaint=4),
    # All 24 Kodak crops, 24 irregular (4 per category, all six), 100 scenes, 24 outpainting
    # cases; 256² … 2048². Meant for a GPU: many hours on 2 CPU cores.
    "full": Suite(kodak_centre=None, per_category=4, categories=tuple(range(6)), scenes=100,
                  sizes=(256, 512, 1024, 2048), skip=_skip({}), pictures=3,
                  kodak_outpaint=None),
    # The sharp-fills issue's Kodak sets in full: all 24 512² centre crops and 12 full photos
    # with 30–40 % and 40–50 % irregular holes (6 each, on 12 different photos, paired by the
    # quick suite's rule); PatchMatch's fills take about 30 min and nps's 7 on 2 cores.
    "kodak": Suite(kodak_centre=None, per_category=6, categories=(3, 4), scenes=0, sizes=(),
                   skip=_skip({"nps-optimise": ("kodak-irregular",)}), pictures=3),
    # The outpainting set of the quick suite alone (4 photos).
    "outpaint": Suite(kodak_centre=0, per_category=0, categories=(), scenes=0, sizes=(),
                      skip=_skip({}), kodak_outpaint=4),
}


def suite_cases(suite: Suite, root: Path) -> list[Case]:
    return (datasets.kodak_centre(root, suite.kodak_centre)
            + datasets.kodak_irregular(root, suite.per_category, suite.categories)
            + datasets.scenes(root, suite.scenes)
            + datasets.kodak_outpaint(root, suite.kodak_outpaint))


def case_setup(suite: Suite) -> dict[str, Any]:
    """What defines a suite's cases, stored in ``OUT/run.json`` so that results of other cases
    (another suite, or an older definition of this one) are never mixed in."""
    return {"kodak_centre": suite.kodak_centre, "kodak_side": datasets.KODAK_SIDE,
            "per_category": suite.per_category, "categories": suite.categories,
            "scenes": suite.scenes, "scene_side": datasets.SCENE_SIDE,
            "kodak_outpaint": suite.kodak_outpaint, "borders": datasets.BORDERS}


def picture_cases(cases: Sequence[Case], per_dataset: int) -> list[Case]:
    """``per_dataset`` cases spread evenly over each data set (first and last included)."""
    chosen = []
    for dataset in dict.fromkeys(c.dataset for c in cases):
        sub = [c for c in cases if c.dataset == dataset]
        picks = np.unique(np.linspace(0, len(sub) - 1, min(per_dataset, len(sub))).round())
        chosen += [sub[int(i)] for i in picks]
    return chosen


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a line cut short by an interruption is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def fill_row(m: Method, case: Case, image: np.ndarray, mask: np.ndarray, cuda: bool,
             keep: Path | None) -> dict[str, Any]:
    """Run one method on one case (hole pixels zeroed first) and score it.

    Known pixels of the result are taken from the input, so every method is scored on its hole
    alone. ``keep``: where to save the filled image, if anywhere. A metric that cannot be
    measured (NaN: SWD of a hole too small for a 7×7 patch) is stored as None (JSON null).
    """
    row: dict[str, Any] = {"method": m.name, "dataset": case.dataset, "image": case.image_id,
                           "mask": case.mask_id, "category": case.category,
                           "height": image.shape[0], "width": image.shape[1],
                           "hole": float(mask.mean())}
    given = datasets.holed(image, mask)
    try:
        result, seconds, peak = measure(lambda: m.fn(given.copy(), mask.copy()), cuda and m.gpu)
        result = np.asarray(result)
        if result.shape != image.shape or result.dtype != np.uint8:
            raise ValueError(f"returned {result.dtype} {result.shape}, not uint8 {image.shape}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - one failed fill must not end the benchmark
        return {**row, "error": f"{type(err).__name__}: {err}"}
    result = np.where(mask[..., None], result, image)
    if keep is not None:
        sheets.save_picture(result, keep)
    scores = {k: None if math.isnan(v) else v for k, v in hole_metrics(result, image, mask).items()}
    return {**row, **scores, "seconds": seconds, "peak_mb": peak}


def row_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return row["method"], row["dataset"], row["image"], row["mask"]


def latest_rows(out: Path) -> list[dict[str, Any]]:
    """``OUT/rows.jsonl``, the last row of each (method, data set, photo, mask) only."""
    return list({row_key(r): r for r in read_jsonl(out / ROWS)}.values())


def run_quality(cases: Sequence[Case], methods: dict[str, Method], out: Path, suite: Suite,
                keep: Callable[[Case, str], bool], cuda: bool, quiet: bool) -> None:
    """Every method on every case, skipping those already in ``OUT/rows.jsonl`` unless
    ``keep(case, method)`` asks for their filled image and it is missing (a fill that failed
    is not retried)."""
    done = {row_key(r): r for r in latest_rows(out)}

    def needed(case: Case, name: str) -> bool:
        row = done.get((name, *case.key))
        if row is None:
            return True
        return ("error" not in row and keep(case, name)
                and not sheets.output_path(out, case, name).exists())

    todo = [(c, m) for c in cases for m in methods
            if c.dataset not in suite.skip.get(m, ()) and needed(c, m)]
    loaded: tuple[Case, np.ndarray, np.ndarray] | None = None
    with tqdm(todo, desc="bench", unit="fill", disable=quiet, dynamic_ncols=True) as bar:
        for case, name in bar:
            bar.set_postfix_str(f"{name} {case.dataset}/{case.image_id}")
            if loaded is None or loaded[0] != case:
                loaded = (case, *case.load())
            path = sheets.output_path(out, case, name) if keep(case, name) else None
            append_jsonl(out / ROWS, fill_row(methods[name], case, *loaded[1:], cuda, path))


def run_speed(root: Path, suite: Suite, methods: dict[str, Method], out: Path, device: str,
              quiet: bool) -> None:
    """End-to-end nps and PatchMatch times per size."""
    cuda = device.startswith("cuda")
    done = {(r["section"], r["size"], r.get("method")) for r in read_jsonl(out / SPEED)}
    tasks: list[tuple[str, int, str | None]] = [
        ("end-to-end", size, name) for size in suite.sizes for name in ("nps", "patchmatch")
        if name in methods]
    tasks = [t for t in tasks if t not in done]
    for section, size, name in tqdm(tasks, desc="speed", disable=quiet, dynamic_ncols=True):
        image, mask = scaling.speed_case(root, size)
        base = {"section": section, "size": size, "method": name}
        try:
            m = methods[name]
            row = {**base, **scaling.end_to_end(m.fn, image, mask, cuda and m.gpu)}
        except (NPSError, RuntimeError, MemoryError) as err:
            row = {**base, "error": f"{type(err).__name__}: {err}"}
        append_jsonl(out / SPEED, row)


def select_methods(names: Sequence[str] | None) -> tuple[dict[str, Method], list[str]]:
    """The runnable methods among ``names`` (default: all registered), and notes on the rest."""
    if names:
        unknown = [n for n in names if n not in METHODS]
        if unknown:
            raise NPSError(f"unknown method(s) {', '.join(unknown)}; known: "
                           f"{', '.join(METHODS)}")
    chosen = list(dict.fromkeys(names or METHODS))
    runnable, notes = {}, []
    for name in chosen:
        if name == "nps-smooth-prior" and "nps" in runnable and content_prior() == "smooth":
            notes.append("`nps-smooth-prior` skipped: identical to `nps` until a content "
                         "network is shipped (`prior='auto'` falls back to the smooth prior)")
            continue
        reason = unavailable(METHODS[name])
        if reason:
            notes.append(f"`{name}` skipped: {reason}")
        else:
            runnable[name] = METHODS[name]
    return runnable, notes


def vgg_weights(root: Path) -> str | None:
    """``$NPS_VGG_WEIGHTS`` if set (the engine reads it), else the shared file beside the data."""
    shared = root.parent / "weights" / VGG_FILE
    return None if os.environ.get("NPS_VGG_WEIGHTS") or not shared.is_file() else str(shared)


def check_run(out: Path, setup: dict[str, Any]) -> None:
    """Refuse to mix results of a different suite or nps setup into one output folder
    (``settings``: a digest of every engine setting, defaults included, and weight file)."""
    path = out / RUN
    setup = json.loads(json.dumps(setup))  # as stored: tuples become lists
    if path.exists():
        old = json.loads(path.read_text())
        if old != setup:
            diff = ", ".join("engine settings, defaults included, or weight files" if k ==
                             "settings" else f"{k}: {old.get(k)!r} → {v!r}"
                             for k, v in setup.items() if old.get(k) != v)
            raise NPSError(f"{out} holds results of a different setup ({diff}); "
                           "use another --out or delete it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(setup) + "\n")


def write_sheets(out: Path, cases: Sequence[Case], pictures: Sequence[Case],
                 methods: Sequence[str], shown: Sequence[str],
                 blind: tuple[str, str] | None, quiet: bool) -> None:
    """Comparison pictures (every method), a look sheet per case (the ``shown`` methods) and,
    with ``blind``, the blind sheets, key and answers template."""
    for case in pictures:
        sheets.write_picture(out / "pictures" / f"{case.dataset}-{case.image_id}-"
                                                f"{case.mask_id}.png", case, out, methods)
    for case in tqdm(cases, desc="look", unit="sheet", disable=quiet, dynamic_ncols=True):
        sheets.write_look(out, case, shown)
    if blind:
        blind_mod.write_blind(out, cases, blind, quiet)


def benchmark(cases: Sequence[Case], methods: dict[str, Method], out: Path, suite: Suite,
              root: Path, device: str = "cpu", quiet: bool = False,
              notes: Sequence[str] = (), blind: tuple[str, str] | None = None) -> int:
    """Run (or resume) ``methods`` on ``cases`` plus the speed section, then write the report
    and the sheets. ``blind``: the two methods of the blind comparison (both in ``methods``).

    Every fill of :data:`LOOK` and of the ``blind`` methods is kept (for the look and blind
    sheets), and every method's fill of the picture cases.
    Returns 0, or 1 when some fill failed (listed in the summary).
    """
    started, load = time.perf_counter(), os.getloadavg()[0]
    cuda = device.startswith("cuda")
    pictures = picture_cases(cases, suite.pictures)
    shown = [m for m in dict.fromkeys(LOOK + (blind or ())) if m in methods]
    picture_keys = {c.key for c in pictures}
    run_quality(cases, methods, out, suite,
                lambda case, name: name in shown or case.key in picture_keys, cuda, quiet)
    run_speed(root, suite, methods, out, device, quiet)
    names = list(methods)
    keys = {c.key for c in cases}
    rows = [r for r in latest_rows(out)
            if r["method"] in methods and (r["dataset"], r["image"], r["mask"]) in keys]
    speed = [r for r in read_jsonl(out / SPEED) if (r.get("method") or "nps") in methods]
    meta = {
        **json.loads((out / RUN).read_text()),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device_name(device), "torch": torch.__version__,
        "cpu": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} "
               "torch threads",
        "wall_s": time.perf_counter() - started,
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
        "methods": {n: m.description for n, m in methods.items()},
        "nps_config": asdict(nps_config()) if "nps" in methods else None,
    }
    report.write_results(out / "results.json", meta, rows, speed)
    report.write_summary(out / "summary.md", meta, rows, speed, names, notes)
    report.write_plot(out / "by_category.png", rows, names)
    write_sheets(out, cases, pictures, names, shown, blind, quiet)
    failed = sum("error" in r for r in rows)
    if failed and not quiet:
        print(f"nps bench: {failed} fill(s) failed; see {out / 'summary.md'}", file=sys.stderr)
    return 1 if failed else 0


def parse_options(text: str | None) -> dict[str, Any]:
    """``--options``: a JSON object of :class:`~neural_patch_synth.config.InpaintConfig`
    options (checked: a bad name or value is an NPSError) → that dict; None → ``{}``."""
    if text is None:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        raise NPSError(f"--options is not valid JSON ({err.msg}): {text!r}") from None
    if not isinstance(options, dict):
        raise NPSError(f"--options must be a JSON object of engine options, got {text!r}")
    InpaintConfig.from_options(**options)
    return options


def run_bench(args: argparse.Namespace) -> int:
    """Entry point of ``nps bench`` (``--suite``, ``--out``, ``--methods``, ``--device``,
    ``--blind``, ``--options``; ``--score-blind OUT`` only prints the blind score of ``OUT``)."""
    if args.score_blind:
        print(blind_mod.score_blind(Path(args.score_blind)), end="")
        return 0
    if not args.out:
        raise NPSError("nps bench needs --out (or --score-blind OUT)")
    suite = SUITES[args.suite]
    root = datasets.data_root(getattr(args, "data", None))
    device = str(resolve_device(args.device))
    out = Path(args.out)
    nps = {**suite.nps, **parse_options(getattr(args, "options", None))}
    configure_nps(device=device, vgg_weights=vgg_weights(root), **nps)
    cases = suite_cases(suite, root)
    methods, notes = select_methods(args.methods)
    present = {c.dataset for c in cases}
    skipped = {m: [d for d in ds if d in present] for m, ds in suite.skip.items() if m in methods}
    notes += [f"`{m}` is not run on {', '.join(ds)} in the {args.suite} suite (time budget, or "
              "not applicable)" for m, ds in skipped.items() if ds]
    if not methods:
        raise NPSError("none of the chosen methods can run here: " + "; ".join(notes))
    pair = blind_mod.parse_pair(args.blind) if args.blind else None
    missing = [m for m in pair or () if m not in methods]
    if missing:
        raise NPSError(f"--blind names {', '.join(missing)}, which this run does not run "
                       f"(runs: {', '.join(methods)})")
    if not args.quiet:
        for note in notes:
            print(f"nps bench: {note}", file=sys.stderr)
    settings = InpaintConfig.from_options(vgg_weights=vgg_weights(root), **nps)
    check_run(out, {"suite": args.suite, "cases": case_setup(suite),
                    "nps": nps or "defaults", "content_prior": content_prior(),
                    "settings": settings_digest(settings)})
    return benchmark(cases, methods, out, suite, root, device, args.quiet, notes, pair)
