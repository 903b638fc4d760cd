"""The domain's one exception: a rule, team or channel it rejects. Pure.

    ValueError
     └── RuleInvalid   ``errors``: [{"field": <location>, "message": …}], turned into a 422 by the service layer
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RuleInvalid"]


@dataclass
class RuleInvalid(ValueError):
    """A rule, team or channel the domain rejects; ``errors`` holds ``{"field": <location>, "message": …}`` entries."""

    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
