"""Static checks of the production packaging: docker-compose.yml, the services' Dockerfiles, .dockerignore
and the helpers in deploy/.

Docker does not run on the development machines, so nothing here builds an image or starts a container
(and nothing calls a ``docker``/``docker-compose`` binary that may happen to be installed). Each check is a
function returning the problems it finds; the tests assert that list is empty, and the ``*_catches_*`` tests
feed a checker a broken copy to show that it does fail.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import stat
import subprocess
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from feedbackloop.contracts.topics import TOPICS
from feedbackloop.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_PORTS = {"ingest": 8001, "classification": 8002, "aggregation": 8003, "notification": 8004}
APPS = sorted(APP_PORTS)
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
DEV_TOOLS = ("requirements-dev", "pytest", "ruff", "mypy", "[dev]", "[test]")


# --- loading ----------------------------------------------------------------------------------------------

def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as strings, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def interpolate_defaults(value: str) -> str:
    """``${VAR:-default}`` → ``default`` (what compose uses when VAR is unset); ``$$`` → ``$``."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) pairs from short (``[ip:]host:container``) or long port syntax."""
    pairs = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            pairs.append((int(entry.get("published", 0)), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        pairs.append((int(parts[-2]) if len(parts) > 1 else 0, int(parts[-1])))
    return pairs


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(t) for t in test or []]


# --- Dockerfile parsing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            match = re.search(r"\bCMD\s+(.*)$", text, re.S)
            text = match.group(1) if match else ""
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) else None


@dataclass(frozen=True)
class Stage:
    image: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (comments dropped, continuation lines joined)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    heads: list[tuple[str, str | None]] = []
    bodies: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            heads.append((words[0], words[2] if len(words) >= 3 and words[1].upper() == "AS" else None))
            bodies.append([])
        elif bodies:
            bodies[-1].append(instruction)
        elif instruction.keyword != "ARG":
            raise ValueError(f"{instruction.keyword} before the first FROM")
    return [Stage(image, name, tuple(body)) for (image, name), body in zip(heads, bodies, strict=True)]


DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def build_args(svc: str) -> dict[str, str]:
    """The build arguments docker-compose.yml gives the one Dockerfile for ``svc``."""
    args = (load_compose()["services"][svc].get("build") or {}).get("args") or {}
    return {str(k): str(v) for k, v in args.items()}


def with_args(text: str, args: dict[str, str]) -> str:
    """The Dockerfile as built with ``args``: each ``${ARG}`` replaced (an unset one by its default, else "")."""
    defaults = dict(re.findall(r'^ARG\s+([A-Za-z_]+)="?([^"\n]*)"?$', text, re.M))
    return re.sub(r"\$\{([A-Za-z_]+)\}", lambda m: args.get(m.group(1), defaults.get(m.group(1), m.group(0))), text)


def load_dockerfile(svc: str) -> list[Stage]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE.relative_to(ROOT)} is missing"
    return parse_dockerfile(with_args(DOCKERFILE.read_text(), build_args(svc)))


# --- compose checks ---------------------------------------------------------------------------------------

def image_or_build_problems(compose: dict[str, Any]) -> list[str]:
    return [f"service {name!r} has neither image nor build"
            for name, svc in compose["services"].items() if not svc.get("image") and not svc.get("build")]


def app_port_problems(compose: dict[str, Any], app: str) -> list[str]:
    service = compose["services"].get(app)
    if service is None:
        return [f"service {app!r} is missing from docker-compose.yml"]
    port, problems = APP_PORTS[app], []
    pairs = published_ports(service)
    if (port, port) not in pairs:
        problems.append(f"{app} must publish {port}:{port}; ports are {service.get('ports')}")
    declared = env_of(service).get(f"{app.upper()}_PORT")
    if declared != str(port):
        problems.append(f"{app} sets {app.upper()}_PORT={declared!r}, expected {port}")
    if env_of(service).get(f"{app.upper()}_HOST") != "0.0.0.0":
        problems.append(f"{app} must bind {app.upper()}_HOST=0.0.0.0 inside its container")
    return problems


def kafka_service(compose: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in compose["services"].items()
             if str(s.get("image", "")).startswith("apache/kafka") and "kafka-server-start" not in str(s)
             and env_of(s).get("KAFKA_PROCESS_ROLES")]
    assert len(found) == 1, f"expected one Kafka broker service, found {[n for n, _ in found]}"
    return found[0]


def postgres_service(compose: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in compose["services"].items() if str(s.get("image", "")).startswith("postgres:")]
    assert len(found) == 1, f"expected one PostgreSQL service, found {[n for n, _ in found]}"
    return found[0]


def listener_map(value: str) -> dict[str, str]:
    """``NAME://host:port,…`` → {NAME: "host:port"}."""
    out = {}
    for item in filter(None, (v.strip() for v in value.split(","))):
        name, _, address = item.partition("://")
        out[name] = address
    return out


def bootstrap_problems(compose: dict[str, Any], app: str) -> list[str]:
    servers = env_of(compose["services"][app]).get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        return [f"{app} does not set KAFKA_BOOTSTRAP_SERVERS"]
    name, kafka = kafka_service(compose)
    env = env_of(kafka)
    advertised = listener_map(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    internal = advertised.get(env.get("KAFKA_INTER_BROKER_LISTENER_NAME", ""), "")
    problems = []
    for server in servers.split(","):
        if server.strip() != internal:
            problems.append(f"{app}: KAFKA_BOOTSTRAP_SERVERS {server!r} is not the broker's internal advertised "
                            f"listener {internal!r}")
        if not internal.startswith(f"{name}:"):
            problems.append(f"the internal advertised listener {internal!r} is not on the compose network "
                            f"(expected {name}:<port>)")
    return problems


def database_url_problems(compose: dict[str, Any], app: str) -> list[str]:
    env = env_of(compose["services"][app])
    var = f"{app.upper()}_DATABASE_URL"
    if var not in env:
        return [f"{app} does not set {var}"]
    url = urlsplit(interpolate_defaults(env[var]))
    pg_name, pg = postgres_service(compose)
    problems = []
    if url.scheme != "postgresql+asyncpg":
        problems.append(f"{var} must use postgresql+asyncpg, not {url.scheme!r}")
    if url.hostname != pg_name:
        problems.append(f"{var} points at host {url.hostname!r}, not the postgres service {pg_name!r}")
    if url.path.lstrip("/") != app or url.username != app:
        problems.append(f"{var} must use database and user {app!r} (got db {url.path!r}, user {url.username!r})")
    password = interpolate_defaults(env_of(pg).get(f"{app.upper()}_DB_PASSWORD", ""))
    if not password or url.password != password:
        problems.append(f"{var}'s password does not match {app.upper()}_DB_PASSWORD given to the postgres init")
    return problems


def production_env_problems(compose: dict[str, Any], app: str) -> list[str]:
    env = env_of(compose["services"][app])
    expected = {"FEEDBACKLOOP_PROFILE": "production", "FEEDBACKLOOP_LOG_FORMAT": "json",
                f"{app.upper()}_AUTO_MIGRATE": "true"}
    return [f"{app}: {k}={env.get(k)!r}, expected {v!r}" for k, v in expected.items() if env.get(k) != v]


def keys_mount_problems(compose: dict[str, Any], app: str) -> list[str]:
    service = compose["services"][app]
    target = env_of(service).get("FEEDBACKLOOP_KEYS_FILE")
    if not target:
        return [f"{app} does not set FEEDBACKLOOP_KEYS_FILE"]
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, dest, ro = parts[0], parts[1] if len(parts) > 1 else "", parts[2:] == ["ro"]
        else:
            source, dest, ro = volume.get("source"), volume.get("target"), bool(volume.get("read_only"))
        if dest == target:
            problems = []
            if source != "./var/keys.json":
                problems.append(f"{app} mounts {source!r} as the key file, expected ./var/keys.json")
            if not ro:
                problems.append(f"{app} must mount the key file read-only")
            return problems
    return [f"{app} sets FEEDBACKLOOP_KEYS_FILE={target} but mounts nothing there"]


def healthcheck_problems(compose: dict[str, Any], app: str) -> list[str]:
    command = healthcheck_command(compose["services"][app])
    if not command:
        return [f"{app} has no healthcheck"]
    text = " ".join(command)
    problems = []
    if "python" not in command[1:2] and not text.startswith("CMD-SHELL python"):
        problems.append(f"{app}'s healthcheck must run python (slim images have no curl): {text}")
    if not re.search(rf"http://(127\.0\.0\.1|localhost):{APP_PORTS[app]}/(healthz|readyz)\b", text):
        problems.append(f"{app}'s healthcheck must GET /healthz or /readyz on port {APP_PORTS[app]}: {text}")
    return problems


def depends_on_problems(compose: dict[str, Any]) -> list[str]:
    services, problems = compose["services"], []
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on must use the long form with a condition")
            continue
        for dep, spec in deps.items():
            condition = (spec or {}).get("condition")
            if dep not in services:
                problems.append(f"{name} depends on {dep!r}, which is not a service")
            elif condition not in DEPENDS_ON_CONDITIONS:
                problems.append(f"{name} → {dep}: unknown condition {condition!r}")
            elif condition == "service_healthy" and not services[dep].get("healthcheck"):
                problems.append(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif condition == "service_completed_successfully" and services[dep].get("restart") not in (None, "no"):
                problems.append(f"{name} waits for {dep} to complete, but {dep} restarts")
    return problems


def depends_on_cycle(compose: dict[str, Any]) -> list[str]:
    services = compose["services"]
    graph = {n: [d for d in (s.get("depends_on") or {}) if d in services] for n, s in services.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        if node in done:
            return []
        visiting.append(node)
        for dep in graph[node]:
            cycle = visit(dep)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return []

    for node in graph:
        cycle = visit(node)
        if cycle:
            return cycle
    return []


def kafka_init_service(compose: dict[str, Any]) -> dict[str, Any]:
    service = compose["services"].get("kafka-init")
    assert service is not None, "docker-compose.yml has no kafka-init service"
    return service


def topic_problems(compose: dict[str, Any]) -> list[str]:
    env = env_of(kafka_init_service(compose))
    created = env.get("FEEDBACKLOOP_TOPICS", "").split()
    expected = {t.name for t in TOPICS} | {t.dlq for t in TOPICS}
    problems = []
    if missing := expected - set(created):
        problems.append(f"kafka-init does not create {sorted(missing)}")
    if extra := set(created) - expected:
        problems.append(f"kafka-init creates topics not in the registry: {sorted(extra)}")
    if len(created) != len(set(created)):
        problems.append(f"kafka-init lists a topic twice: {created}")
    return problems


# --- Dockerfile checks ------------------------------------------------------------------------------------

def multi_stage_problems(stages: list[Stage]) -> list[str]:
    if len(stages) < 2:
        return [f"expected a builder and a runtime stage, found {len(stages)} stage(s)"]
    names = {s.name for s in stages[:-1] if s.name}
    final = stages[-1]
    takes = []
    for i in final.instructions:
        source = re.search(r"--from=(\S+)", i.args)
        if (i.keyword == "COPY" and source and source.group(1) in names) or (
                i.keyword == "RUN" and any(f"from={n}" in i.args for n in names)):
            takes.append(i)
    return [] if takes else ["the runtime stage takes nothing from the builder stage"]


def base_image_problems(stages: list[Stage]) -> list[str]:
    names = {s.name for s in stages if s.name}
    problems = []
    for stage in stages:
        if stage.image in names:
            continue
        if ":" not in stage.image or stage.image.endswith(":latest"):
            problems.append(f"base image {stage.image!r} is not pinned to a tag")
        elif not BASE_IMAGE.match(stage.image):
            problems.append(f"base image {stage.image!r} is not an exact python:3.11.X-slim-bookworm tag")
    return problems


def runtime_install_problems(stages: list[Stage], svc: str, project: str) -> list[str]:
    final, problems = stages[-1], []
    installs = [i.args for i in final.all("RUN") if "pip install" in i.args]
    if not any("--no-index" in a and re.search(rf"\s{re.escape(project)}(\s|$)", a) for a in installs):
        problems.append(f"the runtime stage must `pip install --no-index … {project}` from the built wheels")
    text = " ".join(i.args for s in stages for i in s.instructions if i.keyword in ("RUN", "COPY"))
    problems += [f"the Dockerfile mentions dev tooling {tool!r}" for tool in DEV_TOOLS if tool in text]
    return problems


def user_problems(stages: list[Stage]) -> list[str]:
    final = stages[-1]
    keywords = [i.keyword for i in final.instructions]
    if "CMD" not in keywords:
        return ["the runtime stage has no CMD"]
    cmd_at = len(keywords) - 1 - keywords[::-1].index("CMD")
    users = [i for i in final.instructions[:cmd_at] if i.keyword == "USER"]
    if not users:
        return ["the runtime stage does not switch to a non-root USER before CMD"]
    user = users[-1].args.split(":")[0]
    if user in ("root", "0"):
        return [f"the runtime stage runs as {users[-1].args!r}"]
    if any(i.keyword == "USER" for i in final.instructions[cmd_at:]):
        return ["a USER after CMD is confusing; switch before CMD"]
    return []


def healthcheck_dockerfile_problems(stages: list[Stage], port: int) -> list[str]:
    checks = stages[-1].all("HEALTHCHECK")
    if not checks:
        return ["the runtime stage has no HEALTHCHECK"]
    command = checks[-1].exec_form() or []
    text = " ".join(command) or checks[-1].args
    problems = []
    if not command or command[0] != "python":
        problems.append(f"HEALTHCHECK must run python in exec form (no curl in slim images): {checks[-1].args}")
    if "/healthz" not in text:
        problems.append(f"HEALTHCHECK must probe /healthz: {text}")
    if str(port) not in text and "service_plugin(os.environ['FEEDBACKLOOP_SERVICE']).settings()" not in text:
        problems.append(f"HEALTHCHECK probes neither port {port} nor the port the service's settings give: {text}")
    if re.search(r"\b(curl|wget)\b", text):
        problems.append("HEALTHCHECK uses curl/wget, which the slim image lacks")
    return problems


def expose_problems(stages: list[Stage], port: int) -> list[str]:
    exposed = {p.split("/")[0] for i in stages[-1].all("EXPOSE") for p in i.args.split()}
    return [] if exposed == {str(port)} else [f"EXPOSE {sorted(exposed)} does not match the compose port {port}"]


def cmd_problems(stages: list[Stage], svc: str) -> list[str]:
    cmds = stages[-1].all("CMD")
    command = cmds[-1].exec_form() if cmds else None
    problems = [] if command == ["feedbackloop", "serve", "--container"] else [
        f"CMD must be [\"feedbackloop\", \"serve\", \"--container\"], got {command}"]
    env = " ".join(i.args for i in stages[-1].all("ENV"))
    if not re.search(rf"\bFEEDBACKLOOP_SERVICE={re.escape(svc)}\b", env):
        problems.append(f"the runtime stage does not set FEEDBACKLOOP_SERVICE={svc} (what `serve` runs)")
    return problems


def copy_sources(stages: list[Stage]) -> list[str]:
    """Sources of every COPY/ADD from the build context (not ``--from`` another stage)."""
    sources = []
    for stage in stages:
        for i in stage.instructions:
            if i.keyword not in ("COPY", "ADD") or "--from=" in i.args:
                continue
            words = i.exec_form() or shlex.split(i.args)
            words = [w for w in words if not w.startswith("--")]
            sources += words[:-1]
    return sources


def copies_tests_problems(stages: list[Stage], svc: str) -> list[str]:
    """A source that is, or contains, a tests/ directory would put tests in the image."""
    holders = {".", "./", "*", "shared", "services", f"services/{svc}"}
    problems = []
    for source in copy_sources(stages):
        normal = os.path.normpath(source) if source not in ("*",) else source
        if normal in holders or "tests" in Path(normal).parts or "*" in normal:
            problems.append(f"COPY {source} would (or could) bring tests into the image")
    return problems


def project_name(svc: str) -> str:
    text = (ROOT / "services" / svc / "pyproject.toml").read_text()
    match = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
    assert match, f"services/{svc}/pyproject.toml has no project name"
    return match.group(1)


def unpackaged_files(svc: str) -> list[str]:
    """Files under services/<svc>/src/<svc>/ that its wheel, and so its image, would lack: a data file, or a
    module outside a regular package (no ``__init__.py``), that no ``package-data`` glob covers."""
    pyproject = tomllib.loads((ROOT / "services" / svc / "pyproject.toml").read_text())
    globs = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {}).get(svc, [])
    package = ROOT / "services" / svc / "src" / svc
    missing = []
    for path in sorted(package.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        relative = path.relative_to(package).as_posix()
        in_package = all((d / "__init__.py").exists() for d in [path.parent, *path.parent.parents]
                         if d.is_relative_to(package))
        if path.suffix == ".py" and in_package:
            continue
        if not any(fnmatch(relative, g) and relative.count("/") == g.count("/") for g in globs):
            missing.append(relative)
    return missing


# --- tests: compose ---------------------------------------------------------------------------------------

def test_every_compose_service_has_image_or_build(compose: dict[str, Any]) -> None:
    assert image_or_build_problems(compose) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_is_built_from_its_dockerfile(compose: dict[str, Any], app: str) -> None:
    service = compose["services"].get(app)
    assert service is not None, f"service {app!r} is missing from docker-compose.yml"
    build = service.get("build") or {}
    assert isinstance(build, dict), f"{app}: use the long build form with context and dockerfile"
    context = (COMPOSE_FILE.parent / build.get("context", "")).resolve()
    assert context == ROOT, f"{app}: build context must be the repo root, not {context}"
    assert build.get("dockerfile") == "deploy/Dockerfile", f"{app}: wrong dockerfile {build.get('dockerfile')}"
    assert build_args(app)["SERVICE"] == app and build_args(app)["PORT"] == str(APP_PORTS[app])


@pytest.mark.parametrize("app", APPS)
def test_app_service_publishes_its_port(compose: dict[str, Any], app: str) -> None:
    assert app_port_problems(compose, app) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_uses_the_internal_kafka_listener(compose: dict[str, Any], app: str) -> None:
    assert bootstrap_problems(compose, app) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_database_url_is_its_own_postgres_database(compose: dict[str, Any], app: str) -> None:
    assert database_url_problems(compose, app) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_runs_the_production_profile(compose: dict[str, Any], app: str) -> None:
    assert production_env_problems(compose, app) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_mounts_the_key_file_read_only(compose: dict[str, Any], app: str) -> None:
    assert keys_mount_problems(compose, app) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_has_a_python_healthcheck_on_its_port(compose: dict[str, Any], app: str) -> None:
    assert healthcheck_problems(compose, app) == []


@pytest.mark.parametrize("app", APPS)
def test_app_service_waits_for_broker_topics_and_store(compose: dict[str, Any], app: str) -> None:
    deps = compose["services"][app].get("depends_on") or {}
    conditions = {dep: (spec or {}).get("condition") for dep, spec in deps.items()}
    kafka, _ = kafka_service(compose)
    postgres, _ = postgres_service(compose)
    assert conditions == {kafka: "service_healthy", "kafka-init": "service_completed_successfully",
                          postgres: "service_healthy"}, f"{app} depends_on is {conditions}"


@pytest.mark.parametrize("app", APPS)
def test_app_service_does_not_run_as_root(compose: dict[str, Any], app: str) -> None:
    user = interpolate_defaults(str(compose["services"][app].get("user", "10001")))
    assert user.split(":")[0] not in ("0", "root"), f"{app} runs as {user!r} by default"


def test_depends_on_references_existing_services_with_valid_conditions(compose: dict[str, Any]) -> None:
    assert depends_on_problems(compose) == []


def test_depends_on_has_no_cycle(compose: dict[str, Any]) -> None:
    assert depends_on_cycle(compose) == [], f"depends_on cycle: {' → '.join(depends_on_cycle(compose))}"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            kind = "bind" if isinstance(volume, str) and source.startswith((".", "/")) else (
                volume.get("type", "volume") if isinstance(volume, dict) else "volume")
            if kind == "volume" and source:
                used.add(source)
    assert used <= declared, f"volumes used but not declared at top level: {sorted(used - declared)}"


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("./deploy/") and not (ROOT / source).exists():
                missing.append(f"{name}: {source}")
    assert missing == [], f"bind-mounted deploy files missing: {missing}"


def test_kafka_runs_apache_kafka_in_kraft_single_node_mode(compose: dict[str, Any]) -> None:
    name, kafka = kafka_service(compose)
    env = env_of(kafka)
    assert kafka["image"] == "apache/kafka:3.9.0", f"broker image is {kafka['image']!r}"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, env["KAFKA_PROCESS_ROLES"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    port = listener_map(env["KAFKA_LISTENERS"])[controller].rsplit(":", 1)[1]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@{name}:{port}", (
        f"quorum voters {env['KAFKA_CONTROLLER_QUORUM_VOTERS']!r} must be this node on its controller listener")


def test_kafka_listeners_are_consistent(compose: dict[str, Any]) -> None:
    _, kafka = kafka_service(compose)
    env = env_of(kafka)
    listeners = listener_map(env["KAFKA_LISTENERS"])
    advertised = listener_map(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols), f"listeners {sorted(listeners)} lack a protocol in the map"
    assert set(advertised) <= set(listeners), f"advertised {sorted(advertised)} not all among listeners"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised, "the controller listener must not be advertised"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised, "the inter-broker listener must be advertised"


def test_kafka_is_configured_for_one_node_without_auto_created_topics(compose: dict[str, Any]) -> None:
    env = env_of(kafka_service(compose)[1])
    assert env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "1", "offsets topic replication factor must be 1"
    assert env.get("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR") == "1", "txn log replication factor must be 1"
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", "auto topic creation must be off"


def test_kafka_cluster_id_is_a_base64_uuid(compose: dict[str, Any]) -> None:
    cluster_id = env_of(kafka_service(compose)[1]).get("CLUSTER_ID", "")
    raw = base64.urlsafe_b64decode(cluster_id + "==") if len(cluster_id) == 22 else b""
    assert len(raw) == 16, f"CLUSTER_ID {cluster_id!r} must be a 22-character base64 UUID (kafka-storage random-uuid)"


def test_kafka_init_creates_the_registered_topics_and_their_dlqs(compose: dict[str, Any]) -> None:
    assert topic_problems(compose) == []


def test_kafka_init_uses_the_partition_count_the_services_expect(compose: dict[str, Any]) -> None:
    env = env_of(kafka_init_service(compose))
    expected = KafkaSettings.model_fields["topic_partitions"].default
    assert env.get("TOPIC_PARTITIONS") == str(expected) == "6", f"TOPIC_PARTITIONS={env.get('TOPIC_PARTITIONS')}"


def test_kafka_init_runs_the_mounted_script_against_the_internal_listener(compose: dict[str, Any]) -> None:
    service = kafka_init_service(compose)
    env = env_of(service)
    _, kafka = kafka_service(compose)
    internal_name = env_of(kafka)["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == listener_map(env_of(kafka)["KAFKA_ADVERTISED_LISTENERS"])[internal_name]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes") or [] if isinstance(v, str)}
    command = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    scripts = [c for c in command if c in mounts]
    assert scripts, f"kafka-init runs {command}, which names no mounted script"
    assert mounts[scripts[0]] == "./deploy/kafka/create-topics.sh", f"kafka-init runs {mounts[scripts[0]]}"


def test_create_topics_script_creates_each_topic_with_its_partitions(compose: dict[str, Any], tmp_path: Path) -> None:
    """Runs deploy/kafka/create-topics.sh with kafka-init's environment against a recording kafka-topics.sh."""
    log = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": os.environ["PATH"], **env_of(kafka_init_service(compose)), "KAFKA_BIN": str(tmp_path)}
    result = subprocess.run(["/bin/sh", str(ROOT / "deploy/kafka/create-topics.sh")], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"create-topics.sh failed: {result.stderr}"
    creates = [line.split() for line in log.read_text().splitlines() if "--create" in line]
    made = {c[c.index("--topic") + 1]: c for c in creates}
    expected = {t.name for t in TOPICS} | {t.dlq for t in TOPICS}
    assert set(made) == expected, f"script created {sorted(made)}"
    for topic, call in made.items():
        assert call[call.index("--partitions") + 1] == "6", f"{topic} created with {call}"
        assert "--if-not-exists" in call, f"{topic}: creation must be idempotent"
        assert call[call.index("--bootstrap-server") + 1] == "kafka:9092", f"{topic} created against {call}"


def test_create_topics_script_refuses_to_run_without_topics(tmp_path: Path) -> None:
    result = subprocess.run(["/bin/sh", str(ROOT / "deploy/kafka/create-topics.sh")],
                            env={"PATH": os.environ["PATH"], "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
                                 "KAFKA_BIN": str(tmp_path)},
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0 and "FEEDBACKLOOP_TOPICS" in result.stderr, result.stderr


def test_postgres_is_16_with_a_data_volume(compose: dict[str, Any]) -> None:
    _, pg = postgres_service(compose)
    assert pg["image"] == "postgres:16-alpine", f"postgres image is {pg['image']!r}"
    data = [v for v in pg.get("volumes") or [] if isinstance(v, str) and v.endswith(":/var/lib/postgresql/data")]
    assert data and data[0].split(":")[0] in (compose.get("volumes") or {}), "postgres data must be a named volume"
    assert pg.get("healthcheck"), "postgres needs a healthcheck for service_healthy"


def test_postgres_init_script_creates_a_role_and_database_per_service(
        compose: dict[str, Any], tmp_path: Path) -> None:
    """Runs deploy/postgres/init-databases.sh with the postgres service's environment against a recording psql."""
    _, pg = postgres_service(compose)
    mounts = {v.split(":")[1]: v.split(":")[0] for v in pg.get("volumes") or [] if isinstance(v, str)}
    init = [src for dest, src in mounts.items() if dest.startswith("/docker-entrypoint-initdb.d/")]
    assert init == ["./deploy/postgres/init-databases.sh"], f"postgres init mounts: {init}"
    log = tmp_path / "calls"
    stub = tmp_path / "psql"
    stub.write_text(f'#!/bin/sh\necho "ARGS $*" >> {log}\ncat >> {log}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {k: interpolate_defaults(v) for k, v in env_of(pg).items()}
    env["PATH"] = f"{tmp_path}:{os.environ['PATH']}"
    result = subprocess.run(["/bin/sh", str(ROOT / init[0])], env=env, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, f"init-databases.sh failed: {result.stderr}"
    calls = log.read_text()
    for app in APPS:
        password = env[f"{app.upper()}_DB_PASSWORD"]
        assert f"-v role={app} -v password={password}" in calls, f"no role/database created for {app}:\n{calls}"
    assert calls.count('CREATE DATABASE :"role" OWNER :"role"') == len(APPS), calls


# --- tests: Dockerfiles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_is_multi_stage(svc: str) -> None:
    assert multi_stage_problems(load_dockerfile(svc)) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_base_images_are_pinned(svc: str) -> None:
    assert base_image_problems(load_dockerfile(svc)) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_installs_only_the_built_wheels(svc: str) -> None:
    assert runtime_install_problems(load_dockerfile(svc), svc, project_name(svc)) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_runs_as_non_root_before_cmd(svc: str) -> None:
    assert user_problems(load_dockerfile(svc)) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_healthcheck_probes_healthz_with_python(svc: str) -> None:
    assert healthcheck_dockerfile_problems(load_dockerfile(svc), APP_PORTS[svc]) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_exposes_the_compose_port(compose: dict[str, Any], svc: str) -> None:
    container_ports = {c for _, c in published_ports(compose["services"][svc])}
    assert container_ports == {APP_PORTS[svc]}, f"compose publishes {container_ports} for {svc}"
    assert expose_problems(load_dockerfile(svc), APP_PORTS[svc]) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_cmd_runs_the_service_module(svc: str) -> None:
    assert cmd_problems(load_dockerfile(svc), svc) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_copies_no_tests(svc: str) -> None:
    assert copies_tests_problems(load_dockerfile(svc), svc) == []


@pytest.mark.parametrize("svc", APPS)
def test_dockerfile_copy_sources_exist(svc: str) -> None:
    missing = [s for s in copy_sources(load_dockerfile(svc)) if not (ROOT / s).exists()]
    assert missing == [], f"deploy/Dockerfile built for {svc} copies paths that do not exist: {missing}"


@pytest.mark.parametrize("svc", APPS)
def test_service_wheel_carries_every_file_the_service_needs(svc: str) -> None:
    assert unpackaged_files(svc) == [], (
        f"services/{svc}: these files are not in [tool.setuptools.package-data], so the image would lack them")


def test_dockerignore_keeps_secrets_envs_and_tests_out_of_the_context() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    required = {".git", ".venv", "var", "**/tests", "**/__pycache__", "**/*.egg-info", ".env"}
    assert required <= patterns, f".dockerignore lacks {sorted(required - patterns)}"


# --- the checks can fail ----------------------------------------------------------------------------------

def test_port_check_catches_a_wrong_port(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["ingest"]["ports"] = ["8009:8009"]
    assert app_port_problems(broken, "ingest"), "a wrong published port went unnoticed"


def test_database_url_check_catches_a_sync_driver(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    env = broken["services"]["aggregation"]["environment"]
    env["AGGREGATION_DATABASE_URL"] = env["AGGREGATION_DATABASE_URL"].replace("+asyncpg", "")
    assert database_url_problems(broken, "aggregation"), "a postgresql:// URL without asyncpg went unnoticed"


def test_topic_check_catches_a_missing_dlq(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    env = broken["services"]["kafka-init"]["environment"]
    env["FEEDBACKLOOP_TOPICS"] = env["FEEDBACKLOOP_TOPICS"].replace("insights.v1.dlq", "")
    assert topic_problems(broken) == ["kafka-init does not create ['insights.v1.dlq']"]


def test_depends_on_check_catches_an_unknown_service(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["notification"]["depends_on"]["zookeeper"] = {"condition": "service_healthy"}
    assert depends_on_problems(broken), "a dependency on a missing service went unnoticed"


def test_dockerfile_checks_catch_a_single_stage_root_image_copying_everything() -> None:
    stages = parse_dockerfile(
        "FROM python:latest\nCOPY . /app\nRUN pip install /app\nEXPOSE 9000\nCMD python -m ingest\n")
    assert multi_stage_problems(stages)
    assert base_image_problems(stages)
    assert user_problems(stages)
    assert healthcheck_dockerfile_problems(stages, 8001)
    assert expose_problems(stages, 8001)
    assert cmd_problems(stages, "ingest")
    assert copies_tests_problems(stages, "ingest")
    assert runtime_install_problems(stages, "ingest", "feedbackloop-ingest")
