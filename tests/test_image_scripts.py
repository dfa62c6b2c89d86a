"""The image scripts hold together without building anything.

`make image` / `make image-check` (scripts/image.sh, scripts/image_check.sh) take minutes and a
container engine, so they are the release check, not part of the suite; this checks what can be
checked without them: the scripts parse and are executable, the Makefile runs them, and the images
the build makes are the ones the check and docker-compose.yml run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("scripts/image.sh", "scripts/image_check.sh", "deploy/images/postgres-entrypoint.sh")


def shell_assignments(path: str) -> dict[str, str]:
    """Top-level NAME=value lines of a shell script."""
    text = (ROOT / path).read_text()
    return dict(re.findall(r"^([a-z_]+)=([^\s(]+)$", text, flags=re.MULTILINE))


@pytest.mark.parametrize("path", SCRIPTS)
def test_scripts_are_executable_and_parse(path: str) -> None:
    script = ROOT / path
    assert script.stat().st_mode & 0o111, f"{path} is not executable"
    first = script.read_text().splitlines()[0]
    assert first.startswith("#!"), f"{path} has no interpreter line"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "set -eu" in script.read_text(), f"{path} does not stop at the first failure"


def test_make_targets_run_the_scripts() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = dict(re.findall(r"^([a-z-]+):\n\t(.+)$", makefile, flags=re.MULTILINE))
    assert targets.get("image") == "scripts/image.sh"
    assert targets.get("image-check") == "scripts/image_check.sh"
    phony = re.search(r"^\.PHONY:(.*)$", makefile, flags=re.MULTILINE)
    assert phony and {"image", "image-check"} <= set(phony.group(1).split())


def test_the_check_and_compose_run_the_images_the_build_makes() -> None:
    built, checked = shell_assignments("scripts/image.sh"), shell_assignments("scripts/image_check.sh")
    for name in ("image", "proxy_image", "postgres_image"):
        assert built[name] == checked[name], name
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["web"]["image"] == built["image"] == "storecast:latest"
    check = (ROOT / "scripts" / "image_check.sh").read_text()
    for service, variable, image in (
        ("proxy", "STORECAST_PROXY_IMAGE", built["proxy_image"]),
        ("postgres", "STORECAST_POSTGRES_IMAGE", built["postgres_image"]),
    ):
        assert services[service]["image"].startswith(f"${{{variable}:-"), service
        assert f"{variable}=${service}_image" in check, variable
        assert image.startswith("localhost/storecast-")
    for dockerfile in ("proxy.Dockerfile", "postgres.Dockerfile"):
        text = (ROOT / "deploy" / "images" / dockerfile).read_text()
        assert "ARG BASE_IMAGE=" in text and "FROM ${BASE_IMAGE}" in text, dockerfile
        assert dockerfile in (ROOT / "scripts" / "image.sh").read_text()


def test_the_check_publishes_on_loopback_only_and_cleans_up() -> None:
    check = (ROOT / "scripts" / "image_check.sh").read_text()
    published = re.findall(r' -p "([^"]+:[^"]+)"', check)
    assert published and all(p.startswith("127.0.0.1:") for p in published), published
    assert 'STORECAST_HTTP_PORT="127.0.0.1:' in check
    assert "trap cleanup EXIT" in check
    for kind in ("rm -f -v", "pod rm", "volume rm", "network rm"):
        assert kind in check, f"the clean-up misses {kind}"


def test_compose_health_checks_are_strings_podman_compose_can_quote() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test is None or isinstance(test, str), f"{name}: list-form health check"
