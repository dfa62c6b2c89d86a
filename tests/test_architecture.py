"""The layers of docs/architecture.md, checked on the source: imports point down only, Flask stays in the
interface layer, and an import inside a function is a deferred optional dependency that says why."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# Bottom to top; a module may import its own layer and the ones below it. Every package and top-level
# module is named here: a new one fails test_the_layers_cover_every_module until it is given its layer.
LAYERS: list[tuple[str, ...]] = [
    ("app.forecasting", "app.jsonable"),
    ("app.config", "app.limits", "app.storage", "app.migrate"),
    ("app.registry",),
    ("app.monitoring",),
    ("app.loop",),
    ("app.serving",),
    ("app.jobs",),
    ("app.extensions", "app.gunicorn_worker"),
    ("app.web", "app.cli"),
    ("app.factory", "app"),
]
INTERFACE = LAYERS.index(("app.extensions", "app.gunicorn_worker"))  # Flask from here up
# The two interfaces side by side: neither imports the other (shared state is app.extensions).
APART = ("app.web", "app.cli")
# The only packages that create blueprints: the API (one blueprint, and /metrics beside it) and the pages.
BLUEPRINT_HOMES = ("app.web.api", "app.web.pages")


def _module(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _layer(module: str) -> int:
    """The layer of the longest prefix that names `module`; "app" names the package itself only."""
    best, rank = "", -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            named = module == prefix if prefix == "app" else _within(module, prefix)
            if named and len(prefix) > len(best):
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
    if _layer(module) >= INTERFACE:
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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_web_and_cli_do_not_import_each_other(path: Path) -> None:
    module = _module(path)
    own = next((side for side in APART if _within(module, side)), None)
    if own is None:
        return
    other = next(side for side in APART if side != own)
    crossing = [f"line {line}: {name}" for name, line, _ in _imports(path) if _within(name, other)]
    assert not crossing, f"{module} imports the other interface ({other}):\n" + "\n".join(crossing)


def test_the_cli_loads_no_web_module() -> None:
    code = (
        "import sys; import app.cli, app.extensions; "
        "print(sorted(m for m in sys.modules if m == 'app.web' or m.startswith('app.web.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=APP.parent
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_only_the_api_and_pages_packages_create_blueprints(path: Path) -> None:
    module = _module(path)
    if any(_within(module, home) for home in BLUEPRINT_HOMES):
        return
    created = [
        f"line {node.lineno}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Blueprint"
    ]
    assert not created, (
        f"{module} creates a blueprint (put its routes in app/web/api or app/web/pages):\n"
        + "\n".join(created)
    )


def test_a_new_package_has_no_layer_until_it_is_given_one() -> None:
    assert _layer("app.newpackage") == -1 and _layer("app.newpackage.module") == -1
    assert _layer("app") == len(LAYERS) - 1
