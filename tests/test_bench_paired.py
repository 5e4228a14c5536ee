"""Case-by-case comparison of two bench runs (``neural_patch_synth.bench.paired``)."""

from __future__ import annotations

import json

import pytest

from neural_patch_synth.bench.paired import main


def _write(folder, values):
    folder.mkdir()
    with open(folder / "rows.jsonl", "w") as f:
        for image, (psnr, sharpness) in values.items():
            f.write(json.dumps({"method": "nps", "dataset": "set", "image": image,
                                "mask": "centre", "psnr": psnr, "sharpness": sharpness,
                                "swd": float("nan")}) + "\n")


def test_advantage_standard_error_and_wins(tmp_path, capsys):
    _write(tmp_path / "a", {"p1": (20.0, 0.9), "p2": (18.0, 1.2), "p3": (16.0, 0.5)})
    _write(tmp_path / "b", {"p1": (19.0, 0.8), "p2": (17.0, 0.9), "p3": (17.0, 0.7),
                            "p4": (30.0, 1.0)})  # p4 only in b: left out
    main([str(tmp_path / "a"), str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert "### set: 3 case(s)" in out
    # PSNR gains 1, 1, -1: mean 1/3, std 2/sqrt(3), se 2/3; a better in 2 of 3
    assert "| PSNR dB | 18.000 | 17.667 | +0.333 ± 0.667 | 2 / 3 |" in out
    # sharpness, closer to 1: |b-1| - |a-1| = 0.1, -0.1, -0.2
    assert "| sharpness | 0.867 | 0.800 | -0.067 ± 0.088 | 1 / 3 |" in out
    assert "SWD" not in out  # no finite values


def test_missing_method_is_one_line(tmp_path):
    _write(tmp_path / "a", {"p1": (20.0, 0.9)})
    _write(tmp_path / "b", {"p1": (20.0, 0.9)})
    with pytest.raises(SystemExit, match="no rows of patchmatch"):
        main([str(tmp_path / "a"), str(tmp_path / "b"), "--method", "patchmatch"])
