"""The public surface of `symphony.pit`, locked (as trio's test_exports does)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import symphony.pit
from symphony.pit import _exceptions

MODULES = ["symphony.pit", "symphony.pit.artifacts", "symphony.pit.stale", "symphony.pit.service"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_sorted(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
    for export in module.__all__:
        assert hasattr(module, export), f"{name}.{export}"


def test_every_error_is_exported_and_derives_from_pit_error() -> None:
    assert set(_exceptions.__all__) <= set(symphony.pit.__all__)
    for export in _exceptions.__all__:
        error = getattr(symphony.pit, export)
        assert issubclass(error, symphony.pit.PitError)


def test_the_library_imports_neither_pydantic_nor_structlog_eagerly() -> None:
    # The command line starts faster without them; only symphony.pit.service needs pydantic.
    code = (
        "import sys, symphony.pit, symphony.pit.artifacts, symphony.pit.stale; "
        "print(sorted(m for m in ('pydantic', 'structlog', 'cryptography', 'zstandard') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
