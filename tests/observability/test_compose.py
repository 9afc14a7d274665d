"""docker-compose.yml: valid for Compose, and the stack the README describes."""

from __future__ import annotations

import re
import subprocess
import tomllib
from typing import Any

import yaml

from tests.observability.dashboard import REPO
from tests.support.programs import require_program

COMPOSE = REPO / "docker-compose.yml"


def _services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_docker_compose_validates_the_file() -> None:
    program = require_program("docker-compose")
    # `config` checks the file against Compose's schema without a Docker engine.
    out = subprocess.run(
        [str(program), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_redis_persists_append_only_and_never_evicts() -> None:
    command = " ".join(_services()["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_workers_scale_read_the_files_read_only_and_expose_metrics() -> None:
    worker = _services()["worker"]
    # A fixed container name or host port would stop `--scale worker=N`.
    assert "container_name" not in worker and "ports" not in worker
    assert any(v.endswith(":/data:ro") for v in worker["volumes"])
    assert "9100" in worker["expose"]
    assert worker["command"][-2:] == ["--metrics-port", "9100"]


def test_prometheus_discovers_every_worker_replica() -> None:
    prometheus = _services()["prometheus"]
    assert "./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    config = yaml.safe_load((REPO / "config" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == 9100


def test_prometheus_accepts_its_config() -> None:
    program = REPO / "config" / "prometheus.yml"
    promtool = require_program("promtool")
    out = subprocess.run(
        [str(promtool), "check", "config", str(program)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_and_a_receiving_peer_are_part_of_the_stack() -> None:
    services = _services()
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in services["grafana"]["volumes"]
    assert "storescp" in services["peer"]["command"]


def test_prometheus_and_grafana_listen_on_this_host_only() -> None:
    services = _services()
    for name in ("prometheus", "grafana"):
        ports = services[name]["ports"]
        assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), (name, ports)


def test_grafana_is_not_anonymous_unless_asked_and_the_peer_is_not_root() -> None:
    services = _services()
    environment = services["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "${GRAFANA_ANONYMOUS:-false}"
    assert services["peer"]["user"] not in ("root", "0")


DOCKERFILE = REPO / "Dockerfile"


def test_the_image_is_pinned_checks_its_health_and_installs_pinned_dependencies_first() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    (base,) = [line for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:\d+\.\d+\.\d+-slim-\w+", base), base
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    order = [n for n, line in enumerate(lines) if line.startswith(("COPY", "RUN pip"))]
    copied = [lines[n] for n in order]
    assert copied[0] == "COPY constraints.txt ./"
    assert copied[1] == "RUN pip install --requirement constraints.txt"
    assert copied.index("COPY dispatch ./dispatch") > 1


def test_the_constraints_pin_every_runtime_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = {
        _normal(line.split("==")[0])
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["codecs"]]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        assert _normal(name) in pinned, requirement


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
