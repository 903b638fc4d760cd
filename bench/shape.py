"""How the code is shaped, per service: lines per room, long files and functions, unit and integration tests.

    python bench/shape.py [ROOT]        # a table on stdout, JSON in var/bench/shape.json (ROOT: a checkout)

Rooms are the layout every service shares (README, "Layout"): a module or package under ``src/<service>/`` counts
to the room it is named for; anything else is "other" and listed. Migrations are left out everywhere.
"""

from __future__ import annotations

import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

SERVICES = ("ingest", "classification", "aggregation", "notification")
ROOMS = ("api", "consumer", "worker", "domain", "store", "service", "config", "main", "cli", "tools", "model",
         "transports")
IGNORED = {"__init__", "__main__"}
LONG_FILE, LONG_FUNCTION = 400, 60


def sources(root: Path, service: str) -> list[Path]:
    base = root / "services" / service / "src" / service
    return sorted(p for p in base.rglob("*.py") if "migrations" not in p.parts)


def room_of(path: Path, base: Path) -> str:
    first = path.relative_to(base).parts[0].removesuffix(".py")
    return first if first in ROOMS else "other"


def long_functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
            and node.end_lineno - node.lineno + 1 > LONG_FUNCTION]



def tests_of(root: Path, service: str) -> dict[str, int]:
    counts = {}
    for tier in ("unit", "integration"):
        folder = root / "services" / service / "tests" / tier
        counts[tier] = sum(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
            for path in folder.rglob("test_*.py") for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
    return counts


def measure(root: Path) -> dict[str, object]:
    report: dict[str, object] = {}
    for service in SERVICES:
        base = root / "services" / service / "src" / service
        rooms: dict[str, int] = defaultdict(int)
        others: set[str] = set()
        long_files, long_funcs = [], []
        for path in sources(root, service):
            count = len(path.read_text(encoding="utf-8").splitlines())
            if path.relative_to(base).parts[0].removesuffix(".py") in IGNORED:
                continue
            room = room_of(path, base)
            rooms[room] += count
            if room == "other":
                others.add(path.relative_to(base).parts[0])
            if count > LONG_FILE:
                long_files.append({"file": str(path.relative_to(root)), "lines": count})
            long_funcs += [{"file": str(path.relative_to(root)), "function": n, "lines": c}
                           for n, c in long_functions(path)]
        report[service] = {"rooms": dict(rooms), "other": sorted(others), "total": sum(rooms.values()),
                           "long_files": long_files, "long_functions": long_funcs, "tests": tests_of(root, service)}
    return report


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    report = measure(root)
    print(f"{'service':<15}{'lines':>7}  " + "".join(f"{r:>11}" for r in (*ROOMS, "other"))
          + f"{'>400':>6}{'fn>60':>7}{'unit':>6}{'integ':>7}")
    for service in SERVICES:
        r = report[service]
        assert isinstance(r, dict)
        print(f"{service:<15}{r['total']:>7}  " + "".join(f"{r['rooms'].get(x, 0):>11}" for x in (*ROOMS, "other"))
              + f"{len(r['long_files']):>6}{len(r['long_functions']):>7}{r['tests']['unit']:>6}"
              f"{r['tests']['integration']:>7}")
        if r["other"]:
            print(f"{'':<15}other: {', '.join(r['other'])}")
    out = Path("var/bench/shape.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
