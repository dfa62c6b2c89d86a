"""The layers of docs/architecture.md, checked on the source: imports point down only, Flask stays in the
interface layer, and an import inside a function is a deferred optional dependency that says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# Bottom to top; a module may import its own layer and the ones below it.
LAYERS: list[tuple[str, ...]] = [
    ("app.forecasting", "app.jsonable"),
    ("app.config", "app.limits", "app.storage", "app.migrate"),
    ("app.registry",),
    ("app.monitoring",),
    ("app.loop",),
    ("app.serving",),
    ("app.jobs",),
    ("app.web", "app.cli", "app"),
]
INTERFACE = LAYERS[-1]


def _module(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best, rank = "", -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, index
    return rank


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of the file."""
    tree = ast.parse(path.read_text())
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in child.names] if base in {"app"} else [base]
                found.extend((name, child.lineno, in_function) for name in names)
            visit(child, inside)

    visit(tree, False)
    return found


SOURCES = sorted(APP.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_imports_point_down(path: Path) -> None:
    module = _module(path)
    own = _layer(module)
    upward = [
        f"line {line}: {module} imports {name}"
        for name, line, _ in _imports(path)
        if name.split(".")[0] == "app" and _layer(name) > own
    ]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_flask_only_in_the_interface_layer(path: Path) -> None:
    module = _module(path)
    if _layer(module) == LAYERS.index(INTERFACE):
        return
    flask = [
        f"line {line}: {name}"
        for name, line, _ in _imports(path)
        if name.split(".")[0] in {"flask", "flask_wtf", "werkzeug"}
    ]
    assert not flask, f"{module} is a service or the core and imports Flask:\n" + "\n".join(flask)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_imports_inside_functions_only_defer_an_optional_dependency(path: Path) -> None:
    lines = path.read_text().splitlines()
    bad = []
    for name, line, in_function in _imports(path):
        if not in_function:
            continue
        said_why = "#" in lines[line - 1] or "#" in lines[line - 2]
        if name.split(".")[0] == "app" or not said_why:
            bad.append(f"line {line}: {name}")
    assert not bad, (
        "imports inside functions (import at the top, or defer with a comment saying why):\n" + "\n".join(bad)
    )


def test_the_layers_cover_every_module() -> None:
    assert all(_layer(_module(path)) >= 0 for path in SOURCES)
