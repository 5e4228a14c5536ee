"""``nps batch``: fill holes across a photo archive, resumably, without touching the originals.

Every input becomes one :class:`Job` (photo, expected mask, output). Finished outputs are
skipped, so a killed run loses nothing finished and a rerun carries on; failures are recorded
in a JSONL report and the run goes on. Workers are spawned processes that each load the
networks once; results stream back to the parent, which alone writes the report.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from .api import Inpainter
from .config import InpaintConfig
from .errors import NPSError
from .io import IMAGE_EXTENSIONS, load_image, load_mask, output_format, save_image

try:
    import fcntl
except ImportError:  # Windows: reports are not locked
    fcntl = None

REPORT_NAME = "nps-report.jsonl"
_GLOB_CHARS = re.compile(r"[*?[]")
_ORIENTATION = 0x0112

Record = dict[str, Any]
"""One report line: ``path``, ``status`` (done / skipped / failed), ``error``, ``seconds``,
``output``."""


@dataclass(frozen=True)
class Inputs:
    """The photos named by INPUT, and the folder their relative paths start from."""

    root: Path
    files: list[Path]
    recurses: bool
    """Whether the selection descends into sub-folders (so it could pick up outputs)."""


@dataclass(frozen=True)
class Job:
    """One photo to fill: where it is, where its mask should be, where the result goes."""

    source: Path
    rel: PurePosixPath
    mask: Path
    output: Path


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)`` with ``1 <= I <= N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise NPSError(f"bad --shard {spec!r}: expected I/N with 1 <= I <= N, e.g. 2/8")
    return int(match[1]), int(match[2])


def in_shard(rel: PurePosixPath, index: int, count: int) -> bool:
    """Whether ``rel`` belongs to shard ``index`` (1-based) of ``count``.

    The share is a stable hash of the relative path, so it does not depend on the machine,
    the Python version or which other photos are in the archive.
    """
    digest = hashlib.sha256(os.fsencode(rel.as_posix())).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1


def _absolute(path: str | os.PathLike) -> Path:
    """Absolute, normalised path (``..`` folded) without resolving symlinks."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _scan_folder(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` (and its sub-folders); hidden files and folders are skipped."""
    files = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if recursive and not d.startswith(".")]
        files += [p for p in (Path(top) / n for n in names) if _is_image(p)]
    return files


def _read_list(list_file: Path) -> list[Path]:
    """Paths in a text file, one a line; blank and ``#`` lines ignored; relative to its folder."""
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise NPSError(f"could not read the list of photos {list_file}: {err}") from None
    entries = (line.strip() for line in lines)
    return [_absolute(list_file.parent / e) for e in entries if e and not e.startswith("#")]


def find_inputs(spec: str, recursive: bool) -> Inputs:
    """Resolve INPUT: a folder, a glob (``**`` recurses), a list file, or a single photo."""
    path = _absolute(spec)
    if path.is_dir():
        return Inputs(path, _scan_folder(path, recursive), recursive)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return Inputs(path.parent, [path], False)
    if path.is_file():
        files = list(dict.fromkeys(_read_list(path)))
        root = Path(os.path.commonpath([p.parent for p in files])) if files else path.parent
        return Inputs(root, files, False)
    if not _GLOB_CHARS.search(spec):
        raise NPSError(f"input not found (expected a folder, a glob or a list file): {spec}")
    parts = Path(spec).parts
    fixed = list(itertools.takewhile(lambda part: not _GLOB_CHARS.search(part), parts))
    root = _absolute(Path(*fixed)) if fixed else _absolute(".")
    matches = (_absolute(p) for p in glob.glob(os.path.expanduser(spec), recursive=True))
    return Inputs(root, [p for p in matches if p.is_file() and _is_image(p)], "**" in spec)


def plan_jobs(inputs: Inputs, masks: Path, out: Path, suffix: str) -> list[Job]:
    """One job per input, sorted by relative path; files inside the mask folder are left out."""
    masks_real = masks.resolve()
    jobs = []
    for source in inputs.files:
        if source.resolve().is_relative_to(masks_real):
            continue
        rel = PurePosixPath(source.relative_to(inputs.root).as_posix())
        mask = masks.joinpath(*rel.parent.parts, f"{rel.stem}{suffix}.png")
        jobs.append(Job(source, rel, mask, out.joinpath(*rel.parts)))
    return sorted(jobs, key=lambda job: job.rel.as_posix())


def check_paths(inputs: Inputs, jobs: list[Job], out: Path, report: Path) -> None:
    """Refuse any layout where a write could land on an original, a mask or a future input."""
    out_real, root_real = out.resolve(), inputs.root.resolve()
    if out_real == root_real:
        raise NPSError(f"the output folder is the input folder: {out}; choose another folder")
    if inputs.recurses and out_real.is_relative_to(root_real):
        raise NPSError(f"the output folder {out} is inside the input folder {inputs.root}, "
                       "where a recursive run would pick the outputs up as inputs")
    protected = {}
    for job in jobs:
        real = job.source.resolve()
        if real.is_relative_to(out_real):
            raise NPSError(f"input {job.source} is inside the output folder {out}")
        protected[real] = f"input {job.source}"
        protected[job.mask.resolve()] = f"mask {job.mask}"
    for target in itertools.chain((job.output for job in jobs), [report]):
        if target.resolve() in protected:
            raise NPSError(f"writing {target} would overwrite the {protected[target.resolve()]}")


def _oriented_size(path: Path, decode: bool) -> tuple[int, int]:
    """``(width, height)`` after EXIF orientation; ``decode`` reads all the data too."""
    with Image.open(path) as img:
        width, height = img.size
        if decode:
            img.draft(img.mode, (1, 1))  # JPEG: decode at 1/8 scale, still to the last byte
            img.load()
        turned = img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def is_finished(job: Job) -> bool:
    """The output exists, decodes completely and has the photo's size."""
    if not job.output.is_file():
        return False
    try:
        return _oriented_size(job.output, decode=True) == _oriented_size(job.source, False)
    except Exception:  # noqa: BLE001 - any unreadable file just means "not finished"
        return False


def clean_parts(jobs: Iterable[Job]) -> None:
    """Delete temporary ``.<name>.<random>.part`` files left next to these jobs' outputs.

    Only temporaries of this run's own outputs are touched, so shards that share an output
    folder never delete each other's files in progress.
    """
    names: dict[Path, set[str]] = {}
    for job in jobs:
        names.setdefault(job.output.parent, set()).add(job.output.name)
    for folder, wanted in names.items():
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            name = entry.name
            if name.startswith(".") and name.endswith(".part") and entry.is_file() and (
                name[1:-5].rpartition(".")[0] in wanted
            ):
                Path(entry.path).unlink(missing_ok=True)


def fill(job: Job, inpainter: Inpainter) -> None:
    """Inpaint one photo and write its output atomically (folders created as needed).

    An existing file at the output path is never replaced: with atomic writes it cannot be a
    half-written result of ours, so it may be someone else's file.
    """
    output_format(job.output)
    if job.output.exists():
        raise NPSError(f"output exists but is not a finished result for this photo (unreadable "
                       f"or another size); move it away to redo the photo: {job.output}")
    photo = load_image(job.source)
    if job.mask.is_file():
        mask = load_mask(job.mask, photo.size)
    elif photo.alpha is not None:
        mask = None
    else:
        raise NPSError(f"missing mask: {job.mask} (and the photo has no transparency to use)")
    result = inpainter.photo(photo, mask)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    save_image(job.output, result)


class Worker:
    """Runs jobs with one :class:`~neural_patch_synth.api.Inpainter`, built on first need."""

    def __init__(self, config: InpaintConfig) -> None:
        self.config = config
        self._inpainter: Inpainter | None = None

    def inpainter(self) -> Inpainter:
        """The engine; a failure to build it (bad weights, no CUDA) stops the whole run."""
        if self._inpainter is None:
            self._inpainter = Inpainter(self.config)
        return self._inpainter

    def __call__(self, job: Job) -> Record:
        start = time.perf_counter()
        status, error = "done", None
        if is_finished(job):
            status = "skipped"
        else:
            inpainter = self.inpainter()
            try:
                fill(job, inpainter)
            except NPSError as err:
                status, error = "failed", str(err)
            except Exception as err:  # noqa: BLE001 - one photo's crash must not stop the run
                status, error = "failed", f"internal error: {type(err).__name__}: {err}"
        return {"path": str(job.source), "status": status, "error": error,
                "seconds": round(time.perf_counter() - start, 3), "output": str(job.output)}


_WORKER: Worker | None = None


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    """Block until ``parent`` is gone (even killed with SIGKILL), then exit: no orphans."""
    parent.join()
    os._exit(1)


def _init_process(config: InpaintConfig, threads: int) -> None:
    global _WORKER
    torch.set_num_threads(threads)
    tqdm.set_lock(threading.RLock())  # no cross-process semaphore left behind if terminated
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _WORKER = Worker(config)


def _run_in_process(job: Job) -> Record:
    assert _WORKER is not None
    return _WORKER(job)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_here(jobs: list[Job], config: InpaintConfig) -> Iterator[Record]:
    """Records of ``jobs`` run one after another in this process."""
    yield from map(Worker(config), jobs)


def run_parallel(jobs: list[Job], config: InpaintConfig, workers: int) -> Iterator[Record]:
    """Records of ``jobs`` as spawned worker processes finish them (at most 2 queued each).

    When the run stops early (Ctrl-C, an error), the workers are terminated at once rather
    than left to finish their photos: every write is atomic, so nothing finished is lost.
    """
    todo = iter(jobs)
    context = multiprocessing.get_context("spawn")
    initargs = (config, max(1, _cores() // workers))
    others = set(multiprocessing.active_children())
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process,
                             initargs=initargs) as pool:
        pending: set[Future] = {pool.submit(_run_in_process, job)
                                for job in itertools.islice(todo, 2 * workers)}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    pending.update(pool.submit(_run_in_process, job)
                                   for job in itertools.islice(todo, 1))
        except BrokenProcessPool:
            raise NPSError("a worker process died (out of memory?); finished outputs are kept, "
                           "rerun the same command to resume") from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if pending:
                for process in set(multiprocessing.active_children()) - others:
                    process.terminate()


class Report:
    """Append-only JSONL report, one ``write`` call per line; locked against a second run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a+b", buffering=0)
        except OSError as err:
            raise NPSError(f"could not open the report {path}: {err}") from None
        self._lock()
        end = self._file.seek(0, os.SEEK_END)
        if end:
            self._file.seek(end - 1)
            if self._file.read(1) != b"\n":  # a line cut short by a power cut
                self._file.write(b"\n")

    def _lock(self) -> None:
        if fcntl is None:
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise NPSError(f"another nps batch run is writing the report {self.path}; wait for "
                           "it to end (two runs on the same photos would collide)") from None
        except OSError:  # a file system without locks: go on unlocked
            pass

    def write(self, record: Record) -> None:
        """Append ``record``; a file name that is not UTF-8 is kept as ``\\udcXX`` escapes."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self._file.write(line.encode("utf-8", "backslashreplace"))

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def execute(jobs: list[Job], config: InpaintConfig, workers: int, report: Report,
            quiet: bool, label: str) -> int:
    """Run ``jobs``, log each record, show progress; 0 when none failed, else 1."""
    start, counts = time.perf_counter(), Counter[str]()
    workers = min(workers, len(jobs))
    records = run_parallel(jobs, config, workers) if workers > 1 else run_here(jobs, config)
    bar = tqdm(total=len(jobs), unit="photo", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    try:
        for record in records:
            report.write(record)
            counts[record["status"]] += 1
            if record["status"] == "failed":
                tqdm.write(f"nps: failed: {record['path']}: {record['error']}", file=sys.stderr)
            bar.set_postfix(failed=counts["failed"], refresh=False)
            bar.update()
    finally:
        records.close()
        bar.close()
        left = len(jobs) - sum(counts.values())
        print(f"nps batch{label}: {counts['done']} done, {counts['skipped']} skipped, "
              f"{counts['failed']} failed" + (f", {left} not reached" if left else "")
              + f" in {_clock(time.perf_counter() - start)}; report: {report.path}",
              file=sys.stderr)
    return 1 if counts["failed"] else 0


def run_batch(args: argparse.Namespace, config: InpaintConfig) -> int:
    """``nps batch``: see the README; returns the exit code (0 all good, 1 some failed)."""
    index, count = parse_shard(args.shard)
    if args.workers < 1:
        raise NPSError(f"--workers must be at least 1, got {args.workers}")
    masks, out = _absolute(args.masks), _absolute(args.output)
    if not masks.is_dir():
        raise NPSError(f"mask folder not found: {args.masks}")
    if out.exists() and not out.is_dir():
        raise NPSError(f"the output path exists and is not a folder: {args.output}")
    inputs = find_inputs(args.input, args.recursive)
    jobs = plan_jobs(inputs, masks, out, args.mask_suffix)
    if not jobs:
        hint = "" if args.recursive else " (add --recursive to descend into sub-folders)"
        raise NPSError(f"no photos found in {args.input}{hint}")
    name = REPORT_NAME if count == 1 else f"nps-report-shard{index}of{count}.jsonl"
    report_path = _absolute(args.report) if args.report else out / name
    check_paths(inputs, jobs, out, report_path)
    mine = [job for job in jobs if in_shard(job.rel, index, count)]
    out.mkdir(parents=True, exist_ok=True)
    with Report(report_path) as report:  # taken first: a second run stops before touching files
        clean_parts(mine)
        label = f" (shard {index}/{count})" if count > 1 else ""
        return execute(mine, config, args.workers, report, args.quiet, label)
