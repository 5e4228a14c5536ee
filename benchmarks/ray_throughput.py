"""Photos per minute of ``nps batch --ray`` against ``--workers 2`` and ``--workers 1``.

The same photos for every mode: centre crops (512 x 512) of the first Kodak photos, each with a
256 x 256 box hole in the middle, default engine settings, made in a temporary folder. Each mode
is one ``nps batch`` command; its wall time includes starting Ray or the worker processes, its
run time goes from the first ``started`` line of the report to the last result. With
``--cluster N`` the photos are also run on a simulated cluster of N nodes of 1 CPU each
(``ray.cluster_utils.Cluster``, all on this machine) and the photos done on each node counted.
Prints markdown tables::

    python benchmarks/ray_throughput.py --data ../shared/data/kodak [--photos 8] [--cluster 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

CROP, HOLE = 512, 256


def make_photos(data: Path, count: int, folder: Path) -> tuple[Path, Path]:
    """``photos/`` and ``masks/`` in ``folder``: ``count`` centre crops and their box holes."""
    sources = sorted(data.glob("kodim*.png"))[:count]
    if len(sources) < count:
        sys.exit(f"need {count} Kodak photos in {data}, found {len(sources)}")
    photos, masks = folder / "photos", folder / "masks"
    photos.mkdir()
    masks.mkdir()
    hole = np.zeros((CROP, CROP), np.uint8)
    start = (CROP - HOLE) // 2
    hole[start:start + HOLE, start:start + HOLE] = 255
    for source in sources:
        with Image.open(source) as img:
            left, top = (img.width - CROP) // 2, (img.height - CROP) // 2
            img.convert("RGB").crop((left, top, left + CROP, top + CROP)).save(
                photos / source.name)
        Image.fromarray(hole).save(masks / source.name)
    return photos, masks


def run(photos: Path, masks: Path, out: Path, extra: list[str]) -> dict:
    """One ``nps batch`` command: wall and run seconds, photos done, node of each photo."""
    command = [sys.executable, "-m", "neural_patch_synth.cli", "batch", str(photos),
               "--masks", str(masks), "-o", str(out), "-q", *extra]
    print("$ nps " + " ".join(command[3:]), file=sys.stderr)
    start = time.perf_counter()
    done = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"nps batch failed ({done.returncode}): {done.stderr}")
    lines = [json.loads(line) for line in (out / "nps-report.jsonl").read_text().splitlines()]
    node = {r["path"]: r.get("node") for r in lines if r["status"] == "started"}
    results = [r for r in lines if r["status"] == "done"]
    first = min(r["time"] for r in lines if r["status"] == "started")
    return {"wall": wall, "run": max(r["time"] for r in results) - first, "done": len(results),
            "nodes": Counter(node[r["path"]] for r in results)}


def row(mode: str, result: dict) -> str:
    per_minute = (60 * result["done"] / result[key] for key in ("wall", "run"))
    return (f"| {mode} | {result['done']} | {result['wall']:.0f} | {result['run']:.0f} | "
            + " | ".join(f"{value:.2f}" for value in per_minute) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/kodak", help="Kodak photo folder")
    parser.add_argument("--photos", type=int, default=8, help="photos per mode (default 8)")
    parser.add_argument("--cluster", type=int, metavar="N",
                        help="also run on a simulated Ray cluster of N 1-CPU nodes")
    parser.add_argument("--engine", default="",
                        help="engine options for every run, e.g. '--prior smooth' for a quick "
                             "try (default: the defaults)")
    parser.add_argument("--skip-local", action="store_true",
                        help="only the --cluster run (no --ray / --workers comparison)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nps-ray-bench-") as tmp:
        folder = Path(tmp)
        photos, masks = make_photos(Path(args.data), args.photos, folder)
        engine = args.engine.split()
        modes = [] if args.skip_local else [
            ("--ray", ["--ray"]), ("--workers 2", ["--workers", "2"]), ("--workers 1", [])]
        table = ["| mode | photos | wall s | run s | photos/min (wall) | photos/min (run) |",
                 "|---|---|---|---|---|---|"]
        for number, (mode, extra) in enumerate(modes):
            table.append(row(mode, run(photos, masks, folder / f"out{number}", engine + extra)))
        spread = None
        if args.cluster:
            from ray.cluster_utils import Cluster

            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
            try:
                for _ in range(args.cluster - 1):
                    cluster.add_node(num_cpus=1)
                cluster.wait_for_nodes()
                result = run(photos, masks, folder / "out-cluster",
                             engine + ["--ray", cluster.address])
            finally:
                cluster.shutdown()
            table.append(row(f"--ray ADDRESS ({args.cluster} simulated 1-CPU nodes)", result))
            spread = ["| Ray node | photos |", "|---|---|"] + [
                f"| {node[:12]}… | {count} |" for node, count in sorted(result["nodes"].items())]
    print("\n".join(table))
    if spread:
        print("\n" + "\n".join(spread))


if __name__ == "__main__":
    main()
