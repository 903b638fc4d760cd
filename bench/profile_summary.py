"""Summarize a py-spy ``-f raw`` profile (collapsed stacks): the top frames by own samples and by inclusive share.

    .venv/bin/python bench/profile_summary.py out.raw [--top 25] [--match WORD ...]

Record one with ``py-spy record -r 50 -f raw -o out.raw -- .venv/bin/python
services/classification/bench/consumer_throughput.py``. A frame's *inclusive* share counts every sample whose stack
holds it (once per sample); its *own* share only the samples where it is the innermost frame.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r" \(([^:()]+?)(?::\d+)?\)$")
#: Innermost frames of a thread waiting for work (py-spy counts a Python-level wait as active): left out.
IDLE = frozenset({"_worker (thread.py)", "_connection_worker_thread (core.py)", "EpollSelector.select (selectors.py)"})


def _name(frame: str) -> str:
    """``func (path/to/file.py:12)`` → ``func (file.py)``: lines of one function counted together."""
    match = _LINE.search(frame)
    if not match:
        return frame
    return f"{frame[:match.start()]} ({match.group(1).rsplit('/', 1)[-1]})"


def summarize(path: Path, exclude: tuple[str, ...] = ()) -> tuple[int, Counter[str], Counter[str]]:
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_name(f) for f in stack.split(";")]
        if frames[-1] in IDLE or any(word in frame for frame in frames for word in exclude):
            continue
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", nargs="*", default=[], help="also show the inclusive share of frames naming these")
    parser.add_argument("--exclude", nargs="*", default=["_classifier_alone"],
                        help="leave out samples under frames naming these (default: the bench's ceiling run)")
    args = parser.parse_args()
    total, own, inclusive = summarize(args.raw, tuple(args.exclude))
    print(f"{total} samples (threads waiting for work left out: {', '.join(sorted(IDLE))})")
    print("\ntop frames by own samples")
    for frame, samples in own.most_common(args.top):
        print(f"{100 * samples / total:6.1f} %  {frame}")
    print("\ntop frames by inclusive samples")
    for frame, samples in inclusive.most_common(args.top):
        print(f"{100 * samples / total:6.1f} %  {frame}")
    for word in args.match:
        print(f"\ninclusive, frames naming {word!r}")
        for frame, samples in sorted(inclusive.items(), key=lambda kv: -kv[1]):
            if word in frame:
                print(f"{100 * samples / total:6.1f} %  {frame}")


if __name__ == "__main__":
    main()
