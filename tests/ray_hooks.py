"""Faults on demand in the Ray workers of tests/test_ray_batch.py, by output name: a worker
writing ``die-once*`` dies mid-write the first time (a marker beside the output remembers),
``die-always*`` every time, ``hang*`` hangs mid-write. Each leaves a partial file behind, as a
kill during the write would.

``crash_on_demand`` is a Ray ``worker_process_setup_hook``; ``with_crashes`` a
``RAY_RUNTIME_ENV_HOOK`` that adds it for a driver run as a subprocess.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

HOOK = "tests.ray_hooks.crash_on_demand"


def crash_on_demand() -> None:
    """Wrap the batch worker's ``save_image`` in this process."""
    from neural_patch_synth import batch
    from neural_patch_synth.io import PART_SUFFIX, part_prefix

    real = batch.save_image

    def save_image(path: Path, photo: Any, overwrite: bool = False, tag: str = "") -> None:
        marker = path.parent / f".{path.name}.died"
        fault = (path.name.startswith("die-always") or path.name.startswith("hang")
                 or path.name.startswith("die-once") and not marker.exists())
        if fault:
            fd, _ = tempfile.mkstemp(prefix=part_prefix(path, tag), suffix=PART_SUFFIX,
                                     dir=path.parent)
            os.write(fd, b"half an image")
            marker.touch()
            if path.name.startswith("hang"):
                time.sleep(600)
            os._exit(1)
        real(path, photo, overwrite=overwrite, tag=tag)

    batch.save_image = save_image


def with_crashes(runtime_env: dict | None) -> dict:
    """The driver's runtime env with :func:`crash_on_demand` as its workers' setup hook (and
    the driver's PYTHONPATH, which finds it)."""
    return {**(runtime_env or {}), "worker_process_setup_hook": HOOK,
            "env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}}
