"""``symphony.pit.service``: request and response models of the Pit's API, and the service.

For the ``symphony/artifact/*`` and ``symphony/pit/*`` handlers: each `ArtifactService` method
takes one params model and returns one result model. Imports pydantic, so `symphony.pit` does
not import this module; the command line never needs it. Shapes: ``docs/pit.md``.
"""

from symphony.pit._service import (
    MAX_MESSAGE,
    ArtifactModel,
    ArtifactService,
    DeleteParams,
    FsckParams,
    FsckResult,
    GcParams,
    GcResult,
    GetParams,
    GetResult,
    ListParams,
    ListResult,
    PutAbortParams,
    PutParams,
    PutPartParams,
    PutPartResult,
    PutResultModel,
    RefParams,
    RelationModel,
    RetentionParams,
    SearchHitModel,
    SearchParams,
    SearchResult,
    StatResult,
    VersionsParams,
    VersionsResult,
)

__all__ = [
    "MAX_MESSAGE",
    "ArtifactModel",
    "ArtifactService",
    "DeleteParams",
    "FsckParams",
    "FsckResult",
    "GcParams",
    "GcResult",
    "GetParams",
    "GetResult",
    "ListParams",
    "ListResult",
    "PutAbortParams",
    "PutParams",
    "PutPartParams",
    "PutPartResult",
    "PutResultModel",
    "RefParams",
    "RelationModel",
    "RetentionParams",
    "SearchHitModel",
    "SearchParams",
    "SearchResult",
    "StatResult",
    "VersionsParams",
    "VersionsResult",
]
