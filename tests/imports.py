"""Read which modules a package's source imports, by parsing it (no subprocess, no import)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def absolute_imports(package: str) -> Iterator[tuple[str, str]]:
    """Yield (file relative to the repository, module) for every absolute import in ``package``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                yield str(path.relative_to(ROOT)), name


def top(module: str) -> str:
    """Return a dotted module name's top-level package."""
    return module.split(".")[0]
