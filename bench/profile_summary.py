"""Summarize py-spy profiles of the node: where its samples land, by library and function.

``run_bench.py --profile DIR`` writes one profile per route in py-spy's raw format
(collapsed stacks: frames from the outermost to the innermost, separated by ``;``, then
a sample count). Run: ``python bench/profile_summary.py DIR/get_tweet.txt [...]``.

py-spy samples Python frames only, so the time of a C function (a psycopg2 call, a
socket send) is counted at the Python line that calls it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Libraries by the start of their file path in py-spy's frames, first match wins.
LIBRARIES = (
    ("seventweets/", "seventweets (our code)"),
    ("tornado/", "tornado"),
    ("aiopg/", "aiopg"),
    ("async_timeout/", "aiopg"),
    ("psycopg2/", "psycopg2"),
    ("asyncio/", "asyncio"),
    ("prometheus_client/", "prometheus_client"),
    ("json/", "json"),
)


def library_of(file: str) -> str:
    for prefix, library in LIBRARIES:
        if file.startswith(prefix) or f"/{prefix}" in file:
            return library
    return "other (standard library, runpy)"


def parse_frame(frame: str) -> tuple[str, str]:
    """Return (function, file) of one py-spy frame, without the line number."""
    match = FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


def load_stacks(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(
                ([parse_frame(frame) for frame in stack.split(";")], int(count))
            )
    return stacks


def summarize(path: Path, top: int) -> str:
    stacks = load_stacks(path)
    total = sum(count for _, count in stacks)
    by_library: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    # Samples with the function anywhere on the stack, counted once per sample.
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        function, file = frames[-1]
        by_library[library_of(file)] += count
        by_leaf[f"{function} ({file})"] += count
        for name in {f"{f} ({p})" for f, p in frames if p.startswith("seventweets/")}:
            inclusive[name] += count

    lines = [f"# {path} ({total} samples)", "", "Innermost frame by library:"]
    for library, count in by_library.most_common():
        lines.append(f"  {count / total:6.1%}  {library}")
    lines += ["", f"Innermost frame, top {top} functions:"]
    for name, count in by_leaf.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    lines += ["", "Our functions, with everything they call:"]
    for name, count in inclusive.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy raw profiles")
    parser.add_argument(
        "--top", type=int, default=25, help="functions listed per table"
    )
    args = parser.parse_args()
    print("\n\n".join(summarize(path, args.top) for path in args.profiles))


if __name__ == "__main__":
    main()
