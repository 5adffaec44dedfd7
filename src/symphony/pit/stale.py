"""``symphony.pit.stale``: retention, protection, tiers and garbage collection.

Decisions are pure functions (`plan_retention`, `plan_tiers`, `protection_reasons`); the
`StaleManager` applies them to a store in bounded slices (`StaleManager.run_slice`) that the
daemon can schedule between requests. See ``docs/pit.md``.
"""

from symphony.pit._live import LiveReferences
from symphony.pit._protect import REASONS, protection_reasons
from symphony.pit._stale import (
    DEFAULT_GRACE,
    ArtifactFacts,
    BlobFacts,
    CycleReport,
    Deletion,
    RetentionPlan,
    RetentionPolicy,
    SliceReport,
    StaleManager,
    TierChange,
    TierPolicy,
    plan_retention,
    plan_tiers,
)

__all__ = [
    "DEFAULT_GRACE",
    "REASONS",
    "ArtifactFacts",
    "BlobFacts",
    "CycleReport",
    "Deletion",
    "LiveReferences",
    "RetentionPlan",
    "RetentionPolicy",
    "SliceReport",
    "StaleManager",
    "TierChange",
    "TierPolicy",
    "plan_retention",
    "plan_tiers",
    "protection_reasons",
]
