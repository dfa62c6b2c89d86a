"""The deployment files stay valid and keep their promises, though no Docker engine runs here.

Dockerfile, .dockerignore, docker-compose.yml and deploy/nginx.conf are parsed and checked: the
services, their health checks and volumes, a non-root user, no data in the image, no CDN, and the
configuration table of docs/operations.md, which names every environment variable the code reads.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config import Config

ROOT = Path(__file__).resolve().parent.parent
CDN_HOSTS = ("unpkg.com", "jsdelivr", "cdnjs", "googleapis", "cloudflare", "vega.github.io", "code.jquery")


# Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical: list[str] = []
    buffer = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    pairs = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_a_pinned_slim_python() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for name, a in instructions if name == "ARG" and "=" in a)
    froms = [a for name, a in instructions if name == "FROM"]
    assert len(froms) >= 2, "builder and runtime stages"
    for base in froms:
        image = base.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), image)
        assert image.startswith("python:3.11-slim-bookworm"), image
        assert not image.endswith(":latest")


def test_runtime_stage_runs_gunicorn_as_a_non_root_user_with_a_health_check() -> None:
    runtime = final_stage(dockerfile_instructions())
    users = [a for name, a in runtime if name == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [a for name, a in runtime if name == "HEALTHCHECK"]
    assert healthchecks and "/api/v1/health" in healthchecks[-1]
    start = [a for name, a in runtime if name in {"CMD", "ENTRYPOINT"}]
    assert start and "gunicorn" in start[-1] and "gunicorn.conf.py" in start[-1]
    volumes = " ".join(a for name, a in runtime if name == "VOLUME")
    assert "/app/instance" in volumes and "/app/models" in volumes


def test_image_installs_assets_at_build_and_bakes_in_no_data() -> None:
    instructions = dockerfile_instructions()
    runs = " ".join(a for name, a in instructions if name == "RUN")
    assert "setup_assets.sh" in runs and "npm" in runs
    copies = [a for name, a in instructions if name in {"COPY", "ADD"}]
    for copy in copies:
        sources = [part for part in copy.split()[:-1] if not part.startswith("--")]
        for source in sources:
            assert not source.startswith(("instance", "models", "data", "/work")), copy
            assert not source.endswith((".csv", ".db", ".joblib")), copy
    assert not [a for name, a in instructions if name == "ADD" and "http" in a], "no downloads by ADD"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "instance", "models", "node_modules", "static/vendor", "*.csv", ".env"):
        assert pattern in ignored, f".dockerignore misses {pattern}"


# docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_four_services_with_health_checks(compose: dict) -> None:
    services = compose["services"]
    assert {"web", "scheduler", "proxy", "postgres"} <= set(services)
    for name in ("web", "scheduler", "proxy", "postgres"):
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"
    test = services["web"]["healthcheck"]["test"]
    assert "/api/v1/health" in (test if isinstance(test, str) else " ".join(test))
    assert "postgres" in services["postgres"].get("profiles", []), "postgres only behind its profile"


def test_web_and_scheduler_share_the_volumes_and_one_scheduler_runs_the_jobs(compose: dict) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    for name in ("web", "scheduler"):
        mounts = {m.split(":")[1]: m.split(":")[0] for m in services[name]["volumes"]}
        assert mounts.get("/app/instance") in declared and mounts.get("/app/models") in declared
    assert "pgdata" in declared
    scheduler = services["scheduler"]
    assert scheduler["command"][-1] == "scheduler" and "wsgi" in scheduler["command"]
    assert "deploy" not in scheduler or scheduler["deploy"].get("replicas", 1) == 1
    assert "gunicorn" in services["web"]["command"]
    assert str(services["web"]["environment"].get("SCHEDULER_ENABLED")).lower() == "false"


def test_only_the_proxy_is_published_and_it_uses_our_nginx_conf(compose: dict) -> None:
    services = compose["services"]
    assert "ports" not in services["web"] and "ports" not in services["scheduler"]
    assert services["proxy"]["ports"]
    assert any(v.startswith("./deploy/nginx.conf:") for v in services["proxy"]["volumes"])
    assert str(services["web"]["environment"]["PROXY_COUNT"]) == "1"


def test_compose_requires_a_secret_key_and_sets_only_known_settings(compose: dict) -> None:
    environment = compose["services"]["web"]["environment"]
    assert ":?" in environment["SECRET_KEY"], "compose refuses to start without SECRET_KEY"
    known = set(Config.from_environment()) | gunicorn_environment()
    for service in ("web", "scheduler", "migrate"):
        unknown = set(compose["services"][service]["environment"]) - known - {"LOG_LEVEL"}
        assert not unknown, f"{service} sets variables nothing reads: {unknown}"


def test_migrations_run_once_before_web_and_scheduler(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["command"][-2:] == ["db", "upgrade"]
    for name in ("web", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


# nginx


def nginx_directives(text: str) -> list[tuple[tuple[str, ...], str, list[str]]]:
    """(enclosing blocks, directive, arguments) for every simple directive of an nginx config."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};]+', re.sub(r"#[^\n]*", "", text))
    directives, stack, current = [], [], []
    for token in tokens:
        if token == "{":
            stack.append(" ".join(current))
            current = []
        elif token == "}":
            stack.pop()
        elif token == ";":
            directives.append((tuple(stack), current[0], current[1:]))
            current = []
        else:
            current.append(token)
    assert not stack, "unbalanced braces"
    return directives


@pytest.fixture(scope="module")
def nginx() -> list:
    return nginx_directives((ROOT / "deploy" / "nginx.conf").read_text())


def _find(directives: list, name: str, block: str | None = None) -> list[list[str]]:
    return [args for blocks, n, args in directives if n == name and (block is None or block in blocks)]


def test_nginx_forwards_client_headers_for_proxyfix(nginx: list) -> None:
    headers = {args[0] for args in _find(nginx, "proxy_set_header")}
    assert {"Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} <= headers
    upstream = _find(nginx, "server", "upstream storecast_web")
    assert upstream and upstream[0][0] == "web:8000"


def test_nginx_compresses_limits_api_rate_and_caps_uploads(nginx: list) -> None:
    assert _find(nginx, "gzip") == [["on"]]
    assert "application/json" in _find(nginx, "gzip_types")[0]
    zone = _find(nginx, "limit_req_zone")
    assert zone and any(arg.startswith("rate=") for arg in zone[0])
    assert _find(nginx, "limit_req", "location /api/"), "the API location is rate-limited"
    size = _find(nginx, "client_max_body_size")[0][0]
    megabytes = int(size.rstrip("mM"))
    assert Config.MAX_CONTENT_LENGTH <= megabytes * 1024 * 1024 <= 16 * 1024 * 1024


def test_nginx_serves_metrics_to_private_addresses_only(nginx: list) -> None:
    assert _find(nginx, "deny", "location = /metrics") == [["all"]]
    allowed = {args[0] for args in _find(nginx, "allow", "location = /metrics")}
    assert allowed and all(a.startswith(("127.", "10.", "172.16.", "192.168.")) for a in allowed)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "nginx.conf").read_text().replace("server web:8000;", "server 127.0.0.1:8000;")
    (tmp_path / "nginx.conf").write_text(text)
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


# no CDN, documented settings


def test_no_page_or_script_loads_anything_from_a_cdn() -> None:
    files = [*ROOT.joinpath("templates").rglob("*.html"), *ROOT.joinpath("static").rglob("*")]
    files += [ROOT / "Dockerfile", ROOT / "deploy" / "nginx.conf"]
    offenders = []
    for path in files:
        if not path.is_file() or "vendor" in path.relative_to(ROOT).parts:
            continue
        if path.suffix not in {".html", ".js", ".mjs", ".css", ".conf", ""}:
            continue
        text = path.read_text(errors="replace").lower()
        offenders += [f"{path.relative_to(ROOT)}: {host}" for host in CDN_HOSTS if host in text]
        offenders += [
            f"{path.relative_to(ROOT)}: {m}"
            for m in re.findall(r"(?:src|href)=[\"']?(?:https?:)?//[^\"' >]+", text)
        ]
    assert not offenders, offenders


def environ_reads(*paths: Path) -> set[str]:
    """Names passed to os.environ.get(...) / os.environ[...] in the given Python files."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                owner, key = node.func.value, node.args[0]
                reads_environ = (isinstance(owner, ast.Attribute) and owner.attr == "environ") or (
                    isinstance(owner, ast.Name) and owner.id == "os"
                )
                if reads_environ and node.func.attr in {"get", "getenv"} and isinstance(key, ast.Constant):
                    names.add(key.value)
            elif (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "environ"
            ):
                names.add(node.slice.value)
    return names


def gunicorn_environment() -> set[str]:
    """Environment variables gunicorn.conf.py reads."""
    return environ_reads(ROOT / "gunicorn.conf.py")


def script_environment() -> set[str]:
    """Variables the shell scripts take from the caller: ${NAME:-default} and ${NAME:?...}."""
    names = set()
    for script in ROOT.joinpath("scripts").glob("*.sh"):
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):[-?]", script.read_text()))
    return names


def test_operations_configuration_table_names_every_environment_variable() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "## Configuration" in operations
    configuration = operations.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`", configuration, flags=re.MULTILINE))
    expected = set(Config.from_environment()) | gunicorn_environment() | script_environment()
    expected |= environ_reads(ROOT / "wsgi.py", *ROOT.joinpath("app").rglob("*.py"))
    expected |= {"STORECAST_TEST_DATABASE_URL"}
    missing = expected - documented
    assert not missing, f"docs/operations.md's Configuration table misses {sorted(missing)}"
