"""Package boundaries: the ClientApp side never loads the server or its strategy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("package", ["clients", "tasks", "protocol"])
def test_client_side_packages_import_neither_the_server_nor_the_strategy(package: str) -> None:
    offending = {
        str(path.relative_to(REPO)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] in ("server", "strategies")
        )
        for path in sorted((REPO / package).rglob("*.py"))
    }
    assert not {k: v for k, v in offending.items() if v}
