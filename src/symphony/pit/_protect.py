"""The protection rule: which artifacts nothing but an explicit, forced delete may remove.

One pure function, shared by ``ArtifactStore.delete`` and the retention planner, so the two can
never disagree about what is protected.
"""

from __future__ import annotations

from typing import Final

__all__ = ["REASONS", "protection_reasons"]

REASONS: Final = ("pinned", "accepted-suggestion", "quality", "live")


def protection_reasons(
    *,
    artifact_id: int,
    kind: str,
    pinned: bool,
    quality: float | None,
    outcome: str | None,
    quality_threshold: float | None,
    live: frozenset[int],
) -> tuple[str, ...]:
    """Why an artifact is protected (empty: it is not).

    - ``pinned``: someone pinned it;
    - ``accepted-suggestion``: a suggestion whose outcome is ``accepted`` (training data);
    - ``quality``: its quality score is at least ``quality_threshold``;
    - ``live``: a running workflow holds it (see `LiveReferences`).
    """
    reasons: list[str] = []
    if pinned:
        reasons.append("pinned")
    if kind == "suggestion" and outcome == "accepted":
        reasons.append("accepted-suggestion")
    if quality is not None and quality_threshold is not None and quality >= quality_threshold:
        reasons.append("quality")
    if artifact_id in live:
        reasons.append("live")
    return tuple(reasons)
