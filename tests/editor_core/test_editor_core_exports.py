"""The editor core's public surface, and the purity the issue requires of it."""

from __future__ import annotations

import ast
from pathlib import Path

import symphony.editor_core as core

PACKAGE = Path(core.__file__).parent


def test_exports_are_exactly_all() -> None:
    public = {name for name in dir(core) if not name.startswith("_")}
    modules = {"buffer", "files"}  # public submodules, named in the issue
    assert public - modules == set(core.__all__)
    for name in core.__all__:
        assert getattr(core, name) is not None


def test_editor_core_imports_no_asyncio_server_or_third_party() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = [node.module.split(".")[0]]
                names = [node.module]
            else:
                continue
            for root, name in zip(roots, names, strict=True):
                assert root != "asyncio", f"{source.name} imports asyncio"
                assert not name.startswith("symphony.server"), f"{source.name} imports {name}"
                if root != "symphony":
                    assert root in stdlib or root == "__future__", (
                        f"{source.name} imports third-party {root}"
                    )
                else:
                    assert name.startswith("symphony.editor_core"), f"{source.name}: {name}"
