"""``nps batch``: fill holes across a photo archive, resumably, without touching the originals.

Every input becomes one :class:`Job` (photo, expected mask, output). The parent process alone
writes the JSONL report: a ``started`` line just before a photo's work begins, a result line when
it ends. A rerun reads every report in the output folder: a finished output whose fingerprint
(photo, mask, settings) still matches is skipped, a changed one is redone and the old output kept
in ``OUT/.nps-stale/``; a photo started twice without a result (it killed nps) is recorded as
failed and not retried unless asked. Workers are spawned processes given one photo at a time; a
worker that dies is replaced and its photo recorded as failed. An :class:`Executor` (``--ray``, see
:mod:`neural_patch_synth.ray_batch`) can run the photos elsewhere instead. Temporary files carry
their run's id, and only those of runs that are gone (their lock in ``OUT/.nps-runs/`` is free) are
deleted, at the start of a run and, for its own, at its end.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import torch
from PIL import Image
from tqdm import tqdm

from .api import Inpainter
from .config import InpaintConfig
from .errors import NPSError
from .io import (
    IMAGE_EXTENSIONS,
    check_destination,
    estimated_size,
    load_image,
    load_mask,
    make_output_folder,
    output_format,
    part_tag,
    save_image,
)
from .prior import shipped_weights

try:
    import fcntl
except ImportError:  # Windows: reports and runs are not locked
    fcntl = None

REPORT_NAME = "nps-report.jsonl"
REPORT_GLOB = "nps-report*.jsonl"
"""Reports read for the history of the photos: every default-named one in the output folder."""
RUNS_DIR = ".nps-runs"
"""Folder in OUT of the lock files of the runs writing there."""
STALE_DIR = ".nps-stale"
"""Folder in OUT where outputs that were redone are kept."""
_GLOB_CHARS = re.compile(r"[*?[]")
_ORIENTATION = 0x0112
LOGGER = "neural_patch_synth"

Record = dict[str, Any]
"""One report line: ``path``, ``status`` (started / done / skipped / failed / interrupted),
``output``, ``time``; results add ``error``, ``seconds``, and as it applies ``fingerprint``,
``replaced`` and ``changed`` (a redone photo), ``crash`` (the photo killed its process),
``warnings``; ``started`` adds ``pid`` (the process working on it) and, when it runs on a Ray
cluster, ``node`` (the Ray node id)."""


@dataclass(frozen=True)
class BatchOptions:
    """How :func:`run_batch` goes through the archive (the engine's are in InpaintConfig)."""

    recursive: bool = False
    """Descend into the sub-folders of a folder INPUT."""
    mask_suffix: str = ""
    """The mask of ``<rel>/<name>.<ext>`` is ``MASKS/<rel>/<name><mask_suffix>.png``."""
    workers: int = 1
    """Worker processes; 1 runs in this process."""
    report: str | os.PathLike | None = None
    """Report path (default ``OUT/nps-report.jsonl``, ``OUT/nps-report-shardIofN.jsonl``)."""
    shard: str = "1/1"
    """``"I/N"``: process only the I-th of N shares of the photos."""
    retry_failed: bool = False
    """Retry the photos that killed their process or worker in an earlier run."""
    invert_mask: bool = False
    """Fill the masks' black part (see :meth:`Inpainter.photo`)."""
    allow_large_hole: bool = False
    """Fill holes over 90 % of a photo (see :meth:`Inpainter.photo`)."""
    quiet: bool = False
    """No progress bar."""
    executor: Executor | None = None
    """Runs the photos instead of local worker processes (``workers`` is then unused), e.g.
    :class:`~neural_patch_synth.ray_batch.RayExecutor`."""


@dataclass(frozen=True)
class Setup:
    """What every worker needs: engine settings, their digest, and this run's identity."""

    config: InpaintConfig
    invert_mask: bool
    allow_large_hole: bool
    settings: str
    """:func:`settings_digest` of the above."""
    run_id: str
    """Goes into the names of this run's temporary files."""
    stale: Path
    """Where outputs that are redone are moved (``OUT/.nps-stale``)."""


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
    previous: dict | None = None
    """The fingerprint an earlier run recorded for this output (see :meth:`Worker.fingerprint`),
    None when there is none."""


class Started(Protocol):
    """Called just before a job is handed to the process ``pid`` (on Ray node ``node``)."""

    def __call__(self, job: Job, pid: int, node: str | None = None) -> None: ...


class Executor(Protocol):
    """Somewhere else to run the photos: entered before the first photo (connect, start), left
    after the last; called like :func:`run_here`, it yields one result record per job."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def __call__(self, jobs: list[Job], setup: Setup, started: Started) -> Iterator[Record]: ...


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_identity(path: str | os.PathLike | None) -> str | None:
    """``path|size|mtime`` of a file (just the path where it cannot be read)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return str(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def settings_digest(config: InpaintConfig, invert_mask: bool = False) -> str:
    """Hash of what changes a result: every InpaintConfig field but ``progress`` and
    ``device``, the content-network and VGG-19 weight files in use, and mask inversion."""
    values: dict[str, Any] = {f.name: getattr(config, f.name)
                              for f in dataclasses.fields(config)
                              if f.name not in ("progress", "device")}
    prior = (None if config.prior == "smooth" else shipped_weights()
             if config.prior in ("auto", "network") else config.prior)
    values.update(prior_weights=_file_identity(prior), invert_mask=invert_mask,
                  vgg_weights=_file_identity(config.vgg_weights
                                             or os.environ.get("NPS_VGG_WEIGHTS")))
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stale_path(root: Path, rel: PurePosixPath) -> Path:
    """A free ``ROOT/<rel's folder>/<stem>.prev-<n><ext>`` to keep a replaced output in."""
    folder, n = root.joinpath(*rel.parent.parts), 1
    while (folder / f"{rel.stem}.prev-{n}{rel.suffix}").exists():
        n += 1
    return folder / f"{rel.stem}.prev-{n}{rel.suffix}"


class EngineError(NPSError):
    """The engine could not start (bad weights, no CUDA...): the run stops."""


@contextmanager
def _warnings_to(notes: list[str]) -> Iterator[None]:
    """Collect the library's warnings logged in the block into ``notes``."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class Worker:
    """Runs jobs with one :class:`~neural_patch_synth.api.Inpainter`, built on first need."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self._inpainter: Inpainter | None = None

    def inpainter(self) -> Inpainter:
        """The engine; a failure to build it is an :class:`EngineError`."""
        if self._inpainter is None:
            try:
                self._inpainter = Inpainter(self.setup.config)
            except NPSError as err:
                raise EngineError(str(err)) from None
        return self._inpainter

    def fingerprint(self, job: Job) -> dict:
        """What the output of ``job`` depends on: the photo (size, time, SHA-256; the hash is
        taken from ``job.previous`` when size and time are unchanged), the mask file's SHA-256
        (``alpha`` when the photo's transparency is the mask), the settings digest."""
        st = job.source.stat()
        photo = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        old = (job.previous or {}).get("photo") or {}
        same = all(old.get(key) == value for key, value in photo.items())
        photo["sha256"] = old["sha256"] if same and "sha256" in old else _sha256(job.source)
        mask = _sha256(job.mask) if job.mask.is_file() else "alpha"
        return {"photo": photo, "mask": mask, "settings": self.setup.settings}

    def __call__(self, job: Job) -> Record:
        start = time.perf_counter()
        record: Record = {"path": str(job.source), "status": "done", "error": None,
                          "output": str(job.output)}
        notes: list[str] = []
        with _warnings_to(notes):
            try:
                record.update(self.process(job))
            except EngineError:
                raise
            except NPSError as err:
                record.update(status="failed", error=str(err))
            except Exception as err:  # noqa: BLE001 - one photo's crash must not stop the run
                record.update(status="failed", error=f"internal error: {type(err).__name__}: {err}")
        record["seconds"] = round(time.perf_counter() - start, 3)
        if notes:
            record["warnings"] = notes
        return record

    def process(self, job: Job) -> Record:
        """Fill one photo, or skip it when its output is finished and nothing changed; returns
        the record's fields. When the photo, mask or settings changed since the output was
        made (or the output was damaged since), the old output is moved to ``setup.stale``.

        Any other file at the output path that is not a finished result is never replaced:
        with atomic writes it cannot be a half-written result of ours, so it may be someone
        else's file.
        """
        output_format(job.output)
        changed: list[str] = []
        fingerprint = None
        if job.output.exists():
            finished = is_finished(job)
            if job.previous is None:  # not known to be ours
                if finished:
                    return {"status": "skipped"}  # by a run that kept no fingerprints
                raise NPSError(f"output exists but is not a finished result for this photo "
                               f"(unreadable or another size); move it away to redo the photo: "
                               f"{job.output}")
            fingerprint = self.fingerprint(job)
            changed = [part for part in ("photo", "mask", "settings")
                       if _part(fingerprint, part) != _part(job.previous, part)]
            if finished and not changed:
                return {"status": "skipped", "fingerprint": fingerprint}
            changed = changed or ["output"]  # ours, but damaged since
        photo = load_image(job.source)
        if job.mask.is_file():
            mask = load_mask(job.mask, photo.size)
        elif photo.alpha is not None:
            mask = None
        else:
            raise NPSError(f"missing mask: {job.mask} (and the photo has no transparency to use)")
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise NPSError(f"could not create the folder {job.output.parent}: "
                           f"{err.strerror or err}") from None
        check_destination(job.output, overwrite=bool(changed),
                          needed=estimated_size(photo, output_format(job.output)))
        fingerprint = fingerprint or self.fingerprint(job)
        result = self.inpainter().photo(photo, mask, invert_mask=self.setup.invert_mask,
                                        allow_large_hole=self.setup.allow_large_hole)
        fields: Record = {"status": "done", "fingerprint": fingerprint}
        if changed:
            backup = stale_path(self.setup.stale, job.rel)
            try:
                backup.parent.mkdir(parents=True, exist_ok=True)
                os.replace(job.output, backup)
            except OSError as err:
                raise NPSError(f"could not move the previous output {job.output} aside to "
                               f"{backup}: {err.strerror or err}") from None
            fields.update(replaced=str(backup), changed=changed)
        save_image(job.output, result, tag=self.setup.run_id)
        return fields


def _part(fingerprint: dict, part: str) -> object:
    """The part of a fingerprint that decides a redo (a photo by its hash only)."""
    value = fingerprint.get(part)
    return value.get("sha256") if part == "photo" and isinstance(value, dict) else value


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_here(jobs: list[Job], setup: Setup, started: Started) -> Iterator[Record]:
    """Records of ``jobs`` run one after another in this process; ``started(job, pid)`` is
    called before each."""
    worker = Worker(setup)
    for job in jobs:
        started(job, os.getpid())
        yield worker(job)


def worker_died(job: Job, why: str) -> Record:
    """The failed record of a photo whose worker died while processing it."""
    return {"path": str(job.source), "status": "failed",
            "error": f"the worker processing this photo died ({why})",
            "crash": f"worker died ({why})", "seconds": None, "output": str(job.output)}


Message = tuple[str, Any]
"""From a worker to the parent: ``("log", (name, level, text))``, ``("record", Record)``,
``("fatal", error)`` (its engine cannot start); over a pipe also ``("ready", None)``."""


class _Forward(logging.Handler):
    """In a worker: log records go to the parent as messages, and it logs them again."""

    def __init__(self, send: Callable[[Message], object]) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        self.send(("log", (record.name, record.levelno, record.getMessage())))


def forward_logs(send: Callable[[Message], object], level: int) -> None:
    """In a worker: send the library's log records at ``level`` and above to the parent."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    logger.addHandler(_Forward(send))
    logger.propagate = False


def work(worker: Worker, job: Job) -> Message:
    """In a worker: the message that answers ``job``, its record or the engine's failure."""
    try:
        return "record", worker(job)
    except EngineError as err:
        return "fatal", str(err)


def deliver(message: Message) -> Record | None:
    """In the parent: a worker's log record is logged again, its engine failing to start is
    raised, a record is returned."""
    kind, payload = message
    if kind == "log":
        name, level, text = payload
        logging.getLogger(name).log(level, "%s", text)
    elif kind == "fatal":
        raise EngineError(payload)
    elif kind == "record":
        return payload
    return None


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    """Block until ``parent`` is gone (even killed with SIGKILL), then exit: no orphans."""
    parent.join()
    os._exit(1)


def _serve(conn: Connection, setup: Setup, threads: int, level: int) -> None:
    """A worker process: runs the jobs it receives, one at a time, until its parent is gone.

    Ctrl-C is left to the parent, which terminates its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    tqdm.set_lock(threading.RLock())  # no cross-process semaphore left behind if killed
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    forward_logs(conn.send, level)
    worker = Worker(setup)
    conn.send(("ready", None))
    try:
        while True:
            answer = work(worker, conn.recv())
            conn.send(answer)
            if answer[0] == "fatal":
                return
    except (EOFError, BrokenPipeError):  # the parent is gone
        return


@dataclass
class _Slot:
    """One worker process, its pipe, the job it holds."""

    process: multiprocessing.process.BaseProcess
    conn: Connection
    job: Job | None = None
    ready: bool = False

    def receive(self) -> tuple[Record | None, bool]:
        """The record the worker sent, if any, and whether its pipe is closed. Its log
        messages are logged again here; its engine failing to start is raised."""
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if message[0] == "ready":
                    self.ready = True
                elif (record := deliver(message)) is not None:
                    return record, False
        except (EOFError, OSError):
            return None, True
        return None, False


def _death(process: multiprocessing.process.BaseProcess) -> str:
    """How a worker process ended, in words (one that closed its pipe is ended here)."""
    process.join(5)
    if process.exitcode is None:
        process.kill()
        process.join()
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"killed by {name}" + (", e.g. out of memory" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


def run_parallel(jobs: list[Job], setup: Setup, workers: int, started: Started
                 ) -> Iterator[Record]:
    """Records of ``jobs`` from ``workers`` spawned processes, given one job at a time;
    ``started(job, pid)`` is called just before a job is handed over.

    A worker that dies is replaced, and the photo it held gets a failed record with a
    ``crash``. A worker that exits by itself before it is ready (a broken installation), or an
    engine that cannot start, stops the run. When the run stops (done, Ctrl-C, an error), the
    workers are terminated at once: every write is atomic, so nothing finished is lost.
    """
    context = multiprocessing.get_context("spawn")
    todo = iter(jobs)
    threads = max(1, _cores() // workers)
    level = logging.getLogger(LOGGER).getEffectiveLevel()
    slots: list[_Slot] = []

    def spawn() -> _Slot:
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, setup, threads, level),
                                  daemon=True)
        process.start()
        theirs.close()
        return _Slot(process, ours)

    def hand_out(slot: _Slot) -> None:
        slot.job = next(todo, None)
        if slot.job is not None:
            started(slot.job, slot.process.pid or 0)
            slot.conn.send(slot.job)

    try:
        for _ in range(workers):
            slots.append(spawn())
            hand_out(slots[-1])
        while busy := [i for i, slot in enumerate(slots) if slot.job is not None]:
            wait([slots[i].conn for i in busy] + [slots[i].process.sentinel for i in busy])
            for i in busy:
                slot = slots[i]
                record, closed = slot.receive()
                if record is not None:
                    yield record
                    slot.job = None
                if closed or not slot.process.is_alive():
                    why = _death(slot.process)
                    if not slot.ready and slot.process.exitcode >= 0:  # not killed: broken
                        raise RuntimeError(f"a worker process failed to start ({why})")
                    if slot.job is not None:
                        yield worker_died(slot.job, why)
                    slot.conn.close()
                    slot = slots[i] = spawn()
                if slot.job is None:
                    hand_out(slot)
    finally:
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()
        for slot in slots:
            slot.process.join(5)
            slot.conn.close()


class Report:
    """Append-only JSONL report, one ``write`` call per line; locked against a second run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a+b", buffering=0)
        except OSError as err:
            raise NPSError(f"could not open the report {path}: {err.strerror or err}") from None
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
        """Append ``record`` with the ``time`` (Unix seconds) it is written; a file name that
        is not UTF-8 is kept as ``\\udcXX`` escapes."""
        line = json.dumps({**record, "time": round(time.time(), 3)}, ensure_ascii=False) + "\n"
        self._file.write(line.encode("utf-8", "backslashreplace"))

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@dataclass
class History:
    """What earlier runs recorded for one photo."""

    started: int = 0
    """``started`` lines since its last result."""
    result: Record | None = None
    """Its last result line (done, skipped or failed)."""
    fingerprints: dict[str, dict] = field(default_factory=dict)
    """Output path → the last fingerprint recorded for it."""


def read_history(reports: Iterable[Path]) -> dict[str, History]:
    """Per photo path, what ``reports`` say, their lines taken in the order they were written
    (by ``time``; lines without one, from older runs, first). Unreadable lines are skipped."""
    lines = []
    for number, path in enumerate(reports):
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            continue
        for row, line in enumerate(text.splitlines()):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                when = record.get("time")
                lines.append((when if isinstance(when, (int, float)) else 0, number, row, record))
    history: dict[str, History] = {}
    for *_, record in sorted(lines, key=lambda item: item[:3]):
        entry = history.setdefault(record["path"], History())
        status = record.get("status")
        if status == "started":
            entry.started += 1
        elif status == "interrupted":
            entry.started = 0
        elif status in ("done", "skipped", "failed"):
            entry.started, entry.result = 0, record
            if record.get("fingerprint") and record.get("output"):
                entry.fingerprints[record["output"]] = record["fingerprint"]
    return history


def not_retried(job: Job, entry: History | None) -> Record | None:
    """The failed record of a photo that killed its process in earlier runs (started twice
    without a result, or its worker died), which is not tried again; None to go ahead."""
    if entry is None:
        return None
    if entry.started >= 2:
        crash = "killed while processing"
        error = (f"killed while processing: started {entry.started} times without a result "
                 "(out of memory?)")
    elif entry.result is not None and entry.result.get("crash"):
        crash = entry.result["crash"]
        error = f"{crash} in an earlier run"
    else:
        return None
    return {"path": str(job.source), "status": "failed",
            "error": f"{error}; not retried (--retry-failed tries it again)", "crash": crash,
            "seconds": 0.0, "output": str(job.output)}


class RunLock:
    """This run's lock file ``OUT/.nps-runs/<id>.lock``, held while it runs; the id goes into
    the names of the run's temporary files, so other runs can tell whether they are live."""

    def __init__(self, out: Path) -> None:
        self.id = secrets.token_hex(4)
        self.folder = out / RUNS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        new = self.folder / f".{self.id}.new"
        self._file = open(new, "a")
        if fcntl is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except OSError:  # a file system without locks: others will see this run as live
                pass
        self.path = self.folder / f"{self.id}.lock"
        os.replace(new, self.path)  # appears already locked

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        self._file.close()


def _run_alive(folder: Path, run_id: str) -> bool:
    """Whether run ``run_id`` still holds its lock in ``folder``; a dead run's lock is removed."""
    path = folder / f"{run_id}.lock"
    try:
        lock = open(path, "a")
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: keep its files
    with lock:
        if fcntl is None:
            return True
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        path.unlink(missing_ok=True)
        return False


def clean_parts(jobs: Iterable[Job], runs: Path) -> None:
    """Delete temporary files left next to these jobs' outputs by runs that are gone.

    A temporary file names its run (``.NAME.RUNID-XXXXXXXX.part``); it is deleted only when
    that run's lock in ``runs`` is free or missing, so runs sharing the output folder (shards,
    a ``--shard 1/1`` sweep, another N) never delete each other's files in progress.
    Temporary files without a run id (``nps inpaint``, older versions) are left alone. Dead
    runs' lock files are removed.
    """
    alive: dict[str, bool] = {}
    for folder in {job.output.parent for job in jobs}:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            run_id = part_tag(entry.name)
            if run_id and entry.is_file():
                if run_id not in alive:
                    alive[run_id] = _run_alive(runs, run_id)
                if not alive[run_id]:
                    Path(entry.path).unlink(missing_ok=True)
    for lock in runs.glob("*.lock"):
        _run_alive(runs, lock.stem)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def execute(jobs: list[Job], setup: Setup, options: BatchOptions, report: Report,
            history: dict[str, History], label: str) -> int:
    """Run ``jobs``, report each, show progress; 0 when none failed, else 1."""
    start, counts = time.perf_counter(), Counter[str]()
    bar = tqdm(total=len(jobs), unit="photo", file=sys.stderr, disable=options.quiet,
               dynamic_ncols=True)
    in_flight: dict[str, Job] = {}

    def started(job: Job, pid: int, node: str | None = None) -> None:
        report.write({"path": str(job.source), "status": "started", "output": str(job.output),
                      "pid": pid, **({"node": node} if node else {})})
        in_flight[str(job.source)] = job

    def finished(record: Record) -> None:
        in_flight.pop(record["path"], None)
        report.write(record)
        counts[record["status"]] += 1
        counts["redone"] += "replaced" in record
        if record["status"] == "failed":
            tqdm.write(f"nps: failed: {record['path']}: {record['error']}", file=sys.stderr)
        elif "replaced" in record:
            tqdm.write(f"nps: redone ({', '.join(record['changed'])} changed): "
                       f"{record['path']}; previous output kept as {record['replaced']}",
                       file=sys.stderr)
        bar.set_postfix(failed=counts["failed"], refresh=False)
        bar.update()

    todo = []
    for job in jobs:
        refused = None if options.retry_failed else not_retried(job, history.get(str(job.source)))
        if refused is None:
            todo.append(job)
        else:
            finished(refused)
    workers = min(options.workers, len(todo))
    records = (options.executor(todo, setup, started) if options.executor is not None
               else run_parallel(todo, setup, workers, started) if workers > 1
               else run_here(todo, setup, started))
    try:
        for record in records:
            finished(record)
    except BaseException:  # Ctrl-C, an engine that cannot start: not the photos' fault
        for job in list(in_flight.values()):
            report.write({"path": str(job.source), "status": "interrupted",
                          "output": str(job.output)})
        raise
    finally:
        records.close()
        bar.close()
        left = len(jobs) - counts["done"] - counts["skipped"] - counts["failed"]
        redone = f" ({counts['redone']} redone)" if counts["redone"] else ""
        print(f"nps batch{label}: {counts['done']} done{redone}, {counts['skipped']} skipped, "
              f"{counts['failed']} failed" + (f", {left} not reached" if left else "")
              + f" in {_clock(time.perf_counter() - start)}; report: {report.path}",
              file=sys.stderr)
    return 1 if counts["failed"] else 0


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler ending the job) stops the run like Ctrl-C."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def run_batch(source: str | os.PathLike, masks: str | os.PathLike, output: str | os.PathLike,
              config: InpaintConfig | None = None, options: BatchOptions | None = None) -> int:
    """Fill the holes of the photos named by ``source`` (a folder, a glob, a list file or one
    photo) with the masks in ``masks``, writing to the folder ``output``; see the README.

    Returns 0 when every photo is done or was already, 1 when some failed (see the report).
    Bad usage, an unsafe layout, an unwritable output folder or an engine that cannot start is
    an NPSError before any photo is computed.
    """
    config = config if config is not None else InpaintConfig(progress=False)
    options = options if options is not None else BatchOptions()
    index, count = parse_shard(options.shard)
    if options.workers < 1:
        raise NPSError(f"--workers must be at least 1, got {options.workers}")
    masks, out = _absolute(masks), _absolute(output)
    if not masks.is_dir():
        raise NPSError(f"mask folder not found: {masks}")
    if out.exists() and not out.is_dir():
        raise NPSError(f"the output path exists and is not a folder: {out}")
    spec = os.fspath(source)
    inputs = find_inputs(spec, options.recursive)
    jobs = plan_jobs(inputs, masks, out, options.mask_suffix)
    if not jobs:
        hint = "" if options.recursive else " (add --recursive to descend into sub-folders)"
        raise NPSError(f"no photos found in {spec}{hint}")
    name = REPORT_NAME if count == 1 else f"nps-report-shard{index}of{count}.jsonl"
    report_path = _absolute(options.report) if options.report else out / name
    check_paths(inputs, jobs, out, report_path)
    mine = [job for job in jobs if in_shard(job.rel, index, count)]
    make_output_folder(out)
    with Report(report_path) as report:  # taken first: a second run stops before touching files
        history = read_history(sorted(set(out.glob(REPORT_GLOB)) | {report_path}))
        mine = [replace(job, previous=history[str(job.source)].fingerprints.get(str(job.output)))
                if str(job.source) in history else job for job in mine]
        try:  # the executor first: Ray sets its own SIGTERM handler
            with RunLock(out) as run, options.executor or nullcontext(), _sigterm_interrupts():
                clean_parts(mine, run.folder)
                setup = Setup(config, options.invert_mask, options.allow_large_hole,
                              settings_digest(config, options.invert_mask), run.id,
                              out / STALE_DIR)
                label = f" (shard {index}/{count})" if count > 1 else ""
                return execute(mine, setup, options, report, history, label)
        finally:  # the run's lock is gone: what its stopped workers left is deleted too
            clean_parts(mine, out / RUNS_DIR)
