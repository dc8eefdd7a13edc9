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


PROJECT = ("protocol", "tasks", "clients", "strategies", "server", "benchmarks", "tests")
# Which of the project's packages each one may import (its own always). Layers, bottom up:
# protocol (wire and config schema) < tasks < clients; protocol < strategies < server;
# benchmarks use the product, never the tests.
ALLOWED_IMPORTS = {
    "protocol": set(),
    "tasks": {"protocol"},
    "clients": {"protocol", "tasks"},
    "strategies": {"protocol"},
    "server": {"protocol", "tasks", "strategies"},
    "benchmarks": {"protocol", "tasks", "clients", "strategies", "server"},
}


def project_imports(package: str) -> dict[str, set[str]]:
    """File -> the project packages it imports (function-level imports included)."""
    return {
        str(path.relative_to(REPO)): {
            m.split(".")[0] for m in imported_modules(path) if m.split(".")[0] in PROJECT
        }
        - {package}
        for path in sorted((REPO / package).rglob("*.py"))
    }


@pytest.mark.parametrize("package", list(ALLOWED_IMPORTS))
def test_each_package_imports_only_the_layers_below_it(package: str) -> None:
    allowed = ALLOWED_IMPORTS[package]
    offending = {f: sorted(m - allowed) for f, m in project_imports(package).items()}
    assert not {f: m for f, m in offending.items() if m}
