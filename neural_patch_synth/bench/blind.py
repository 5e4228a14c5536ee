"""Blind A/B judging: unlabelled sheets of two methods' fills, the key, and the scorer.

    nps bench --suite quick --out OUT --blind nps,patchmatch   # the sheets (after the fills)
    python -m neural_patch_synth.bench.blind OUT [--answers FILE]
    nps bench --score-blind OUT                                # the same score

- ``OUT/blind/case-NN.png``: input | left | right | truth, cropped as the look sheets, with no
  method names. Which method is on the left is drawn once for the whole set with a fixed seed,
  balanced: method A is on the left in half the cases (rounded up).
- ``OUT/blind-key.json``: ``{"pair": [A, B], "cases": {"01": {"left", "right", "dataset",
  "image", "mask", "fills"}, ...}}``; ``fills`` is a digest of the two kept fill files, so
  answers are never paired with sheets of other fills.
- ``OUT/blind-answers.md``: the judge writes ``left``, ``right`` or ``tie`` after each case
  number (``01: left``). A rerun never overwrites an answer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import write_text

from .datasets import Case, seeded_rng
from .sheets import load_fill, look_sheet, output_path, save_picture

KEY, ANSWERS, FOLDER = "blind-key.json", "blind-answers.md", "blind"
CHOICES = ("left", "right", "tie")
SEED = "blind"
"""Name whose CRC32 seeds the side draw."""
ANSWER = re.compile(r"^\s*(\d+)\s*:\s*([A-Za-z]*)")

Key = dict[str, Any]


def parse_pair(text: str) -> tuple[str, str]:
    """``"nps,patchmatch"`` → ``("nps", "patchmatch")``; two different names or NPSError."""
    names = tuple(n.strip() for n in text.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise NPSError(f"--blind takes two different method names, A,B; got {text!r}")
    return names[0], names[1]


def make_key(cases: Sequence[Case], pair: tuple[str, str]) -> Key:
    """The blind key of ``cases`` (numbered from 1 in the given order) for methods ``pair``."""
    n = len(cases)
    width = max(2, len(str(n)))
    a_left = seeded_rng(SEED).permutation(n) < (n + 1) // 2
    entries = {}
    for i, (case, flag) in enumerate(zip(cases, a_left, strict=True), start=1):
        left, right = pair if flag else pair[::-1]
        entries[f"{i:0{width}d}"] = {"left": str(left), "right": str(right),
                                     "dataset": case.dataset, "image": case.image_id,
                                     "mask": case.mask_id}
    return {"pair": list(pair), "cases": entries}


def template(key: Key) -> str:
    """The answers file a judge fills in: one ``NN:`` line per case."""
    lines = [
        "# Blind comparison: which fill looks better?", "",
        f"Open `{FOLDER}/case-NN.png` for each case below (input | left | right | truth).",
        "Write `left`, `right` or `tie` after its number; anything after that word is ignored.",
        "Then score: `python -m neural_patch_synth.bench.blind OUT` (or `nps bench "
        "--score-blind OUT`).", "",
    ]
    return "\n".join(lines + [f"{number}: " for number in key["cases"]]) + "\n"


def read_answers(path: Path) -> dict[int, str]:
    """Case number → ``left``, ``right`` or ``tie`` from a filled-in answers file; blank
    answers are left out. NPSError on an unknown word or a case answered twice."""
    answers: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        match = ANSWER.match(line)
        if not match:
            continue
        number, word = int(match.group(1)), match.group(2).lower()
        if number in answers:
            raise NPSError(f"{path}:{lineno}: case {number} is answered twice")
        if word and word not in CHOICES:
            raise NPSError(f"{path}:{lineno}: {word!r} is not left, right or tie")
        if word:
            answers[number] = word
    return answers


def fills_digest(out: Path, case: Case, pair: tuple[str, str]) -> str:
    """Short SHA-256 of the kept fill files of ``pair`` (in that order) for ``case``."""
    digest = hashlib.sha256()
    for method in pair:
        digest.update(output_path(out, case, method).read_bytes())
    return digest.hexdigest()[:16]


def write_blind(out: Path, cases: Sequence[Case], pair: tuple[str, str],
                quiet: bool = False) -> Key:
    """Blind sheets, key and answers template for the cases where both methods' fills were
    kept. A key that differs from the one in ``OUT`` (other cases, sides or fills) replaces it
    only while no answer has been written (else NPSError: move the old key and answers
    away)."""
    both = [c for c in cases if all(output_path(out, c, m).exists() for m in pair)]
    if not both:
        raise NPSError(f"no case has kept fills of both {pair[0]} and {pair[1]} in {out}")
    key = make_key(both, pair)
    for case, entry in zip(both, key["cases"].values(), strict=True):
        entry["fills"] = fills_digest(out, case, pair)
    key_path, answers_path = out / KEY, out / ANSWERS
    if key_path.exists() and json.loads(key_path.read_text()) != key:
        if answers_path.exists() and read_answers(answers_path):
            raise NPSError(f"{key_path} is for other blind cases or other fills, and "
                           f"{answers_path} holds answers to it; move both away to make a new "
                           "set")
        answers_path.unlink(missing_ok=True)
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for case, (number, entry) in tqdm(list(zip(both, key["cases"].items(), strict=True)),
                                      desc="blind", unit="sheet", disable=quiet,
                                      dynamic_ncols=True):
        image, mask = case.load()
        fills = [(side, load_fill(out, case, entry[side])) for side in ("left", "right")]
        save_picture(look_sheet(image, mask, fills, f"case {number}"),
                     folder / f"case-{number}.png")
    write_text(key_path, json.dumps(key, indent=1) + "\n")
    if not answers_path.exists():
        write_text(answers_path, template(key))
    return key


def tally(key: Key, answers: dict[int, str]) -> dict[str, dict[str, int]]:
    """Per data set, then ``all``: cases, answered, and preferences per method and ``tie``."""
    a, b = key["pair"]
    counts: dict[str, dict[str, int]] = {}
    for number, entry in key["cases"].items():
        row = counts.setdefault(entry["dataset"],
                                {"cases": 0, "answered": 0, a: 0, b: 0, "tie": 0})
        row["cases"] += 1
        word = answers.get(int(number))
        if word:
            row["answered"] += 1
            row[entry[word] if word != "tie" else "tie"] += 1
    total = {k: sum(row[k] for row in counts.values()) for k in ("cases", "answered", a, b, "tie")}
    return {**counts, "all": total}


def _share(count: int, of: int) -> str:
    return f"{count} ({100 * count / of:.0f} %)" if of else str(count)


def score_table(key: Key, answers: dict[int, str]) -> list[str]:
    """Markdown: preferences per data set and over all cases (shares of the answered ones)."""
    unknown = sorted(set(answers) - {int(n) for n in key["cases"]})
    if unknown:
        raise NPSError(f"answers to case(s) {unknown} that the key does not hold")
    a, b = key["pair"]
    header = ["data set", "cases", "answered", f"{a} preferred", f"{b} preferred", "tie"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, row in tally(key, answers).items():
        cells = [group, str(row["cases"]), str(row["answered"])]
        cells += [_share(row[k], row["answered"]) for k in (a, b, "tie")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def score_blind(out: Path, answers: Path | None = None) -> str:
    """The score of ``OUT``'s blind set from ``answers`` (default ``OUT/blind-answers.md``)."""
    key_path, answers = out / KEY, answers or out / ANSWERS
    for path in (key_path, answers):
        if not path.is_file():
            raise NPSError(f"{path} not found (run nps bench with --blind first)")
    key = json.loads(key_path.read_text())
    given = read_answers(answers)
    a, b = key["pair"]
    head = (f"Blind comparison {a} vs {b}: {len(given)} of {len(key['cases'])} case(s) "
            f"answered in {answers}.")
    return "\n".join([head, ""] + score_table(key, given)) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a blind A/B comparison of nps bench.")
    parser.add_argument("out", type=Path, help="the nps bench output folder (holds the key)")
    parser.add_argument("--answers", type=Path,
                        help="filled-in answers file (default OUT/blind-answers.md)")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        print(score_blind(args.out, args.answers), end="")
    except NPSError as err:
        print(f"blind: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
