"""The bench scripts import each other by module name (``bench/`` is on ``sys.path`` when one runs)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
