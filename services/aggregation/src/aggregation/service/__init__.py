"""Aggregation's use cases, one module per use case; each runs inside a unit of work and never commits.

* ``apply.py``: a classified item (``feedback.classified.v1``), a release marker (``releases.v1``), an
  insight acknowledged, a release posted;
* ``erasure.py``: an erasure request (``privacy.v1``);
* ``loops.py``: a tracker change (``tracker.v1``), a release naming issues, regressions (closing the loop);
* ``links.py``: linking a theme, an insight or items to a tracker issue, creating it, retrying a creation;
* ``detection.py``: one run of the detectors over the dirty hours and the growing clusters;
* ``reports.py``: the read use cases of the API and dashboard over the rollups (theme ranking, KPIs, series).
"""

from aggregation.service.apply import (
    acknowledge_insight,
    apply_classified,
    apply_release,
    hint_batch,
    publish_release,
    release_event_id,
    write_staged,
)
from aggregation.service.detection import run_detectors
from aggregation.service.erasure import apply_erasure
from aggregation.service.loops import apply_tracker_change, close_on_release, flag_regressions

__all__ = ["acknowledge_insight", "apply_classified", "apply_erasure", "apply_release", "apply_tracker_change",
           "close_on_release", "flag_regressions", "hint_batch", "publish_release", "release_event_id",
           "run_detectors", "write_staged"]
