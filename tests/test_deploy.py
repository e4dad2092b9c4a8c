"""The deploy files: container image, compose network, Kubernetes manifests, systemd unit.

No container engine or cluster runs here. So these tests check each file with the tools
of its ecosystem: hadolint, the Compose specification's schema, kubernetes-validate,
kubectl kustomize and systemd-analyze. They also assert the structure that the network
relies on, and run the scripts that the files call for real: the health check, the
database init script, the seed selection and the secret generation.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from seventweets.embedded import find_bin_dir

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# The oldest Kubernetes with native sidecars (restartPolicy on an init container) enabled by
# default, and the newest that kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
NODE_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
REQUIRED_VARIABLE = re.compile(r"^\$\{([A-Z0-9_]+):\?[^}]+\}$")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD")


def tool(name: str) -> str:
    """Return the path of a command from the test environment or PATH, or fail the test."""
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.fail(
            f"{name} not found: install the test extra (pip install -e '.[test]')"
        )
    return found


def run(*command: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def new_secrets(kind: str) -> dict[str, str]:
    """Run deploy/new-secrets.sh for one kind and return the variables it prints."""
    result = run(DEPLOY / "new-secrets.sh", kind)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


# Container image


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (keyword, arguments), continuations joined."""
    instructions = []
    current = ""
    for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing to report in the Dockerfile."""

    result = run(tool("hadolint"), "--no-color", DEPLOY / "Dockerfile")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_image_runs_node_as_non_root() -> None:
    """The runtime stage is slim, runs as a numeric non-root user and starts the node."""
    instructions = dockerfile_instructions()
    stages = [
        index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"
    ]
    runtime = instructions[stages[-1] :]

    def last(keyword: str) -> str:
        values = [arguments for found, arguments in runtime if found == keyword]
        assert values, f"no {keyword} in the runtime stage"
        return values[-1]

    assert len(stages) >= 2
    assert "-slim" in runtime[0][1]
    user = last("USER").split(":")[0]
    assert user.isdigit()
    assert int(user) != 0
    assert json.loads(last("ENTRYPOINT")) == ["tini", "--", "seventweets"]
    assert last("STOPSIGNAL") == "SIGTERM"
    assert last("HEALTHCHECK").endswith('CMD ["seventweets-healthcheck"]')
    environment = " ".join(
        arguments for keyword, arguments in runtime if keyword == "ENV"
    )
    assert "SEVENTWEETS_HOST=0.0.0.0" in environment.split()


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Return whether Docker leaves ``path`` out of the build context.

    Follows Docker's rules for the patterns used here: the last matching pattern wins, a
    pattern that matches a folder matches everything under it, ``*`` stays within one path
    segment and ``**`` crosses segments.
    """
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        expression = (
            re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        )
        expression = expression.replace(r"\?", "[^/]")
        if any(re.fullmatch(expression, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_build_context_holds_whole_package(tmp_path: Path) -> None:
    """A wheel built from the files that .dockerignore keeps contains every package file."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [
        line.strip() for line in lines if line.strip() and not line.startswith("#")
    ]
    # The files of a fresh clone: tracked ones and new ones that .gitignore does not hide.
    listed = run(
        "git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT
    )
    assert listed.returncode == 0, listed.stderr
    context = tmp_path / "context"
    for relative in listed.stdout.splitlines():
        if (ROOT / relative).is_file() and not dockerignore_excludes(
            relative, patterns
        ):
            target = context / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target)
    package_files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "seventweets").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }

    # With build isolation, as the image's `pip install .` does.
    result = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--wheel-dir",
        tmp_path / "wheels",
        context,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("seventweets-*.whl")
    assert package_files <= set(zipfile.ZipFile(wheel).namelist())
    assert (context / "deploy" / "healthcheck.py").is_file()
    assert dockerignore_excludes("deploy/.env", patterns)
    assert dockerignore_excludes("deploy/kubernetes/secrets.env", patterns)
    assert dockerignore_excludes(
        "seventweets/__pycache__/app.cpython-311.pyc", patterns
    )


class HealthHandler(http.server.BaseHTTPRequestHandler):
    """Request handler that returns the status set on its server for GET /health."""

    server: HealthServer

    def do_GET(self) -> None:
        self.send_response(self.server.status if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Keep access log lines out of the test output."""


class HealthServer(http.server.ThreadingHTTPServer):
    """Stand-in node on a free loopback port whose /health returns ``status``."""

    status = 200

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HealthHandler)


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = HealthServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def run_healthcheck(
    port: int, host: str = "0.0.0.0"
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SEVENTWEETS_HOST": host,
        "SEVENTWEETS_PORT": str(port),
    }
    return run(sys.executable, DEPLOY / "healthcheck.py", env=environment)


def test_healthcheck_passes_on_200(health_server: HealthServer) -> None:
    """The health check exits 0 when /health returns 200 on a node bound to 0.0.0.0."""

    result = run_healthcheck(health_server.server_address[1])

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_healthcheck_fails_on_503(health_server: HealthServer) -> None:
    """The health check exits 1 and names the status while the database is down."""
    health_server.status = 503

    result = run_healthcheck(health_server.server_address[1], host="127.0.0.1")

    assert result.returncode == 1
    assert "returned 503" in result.stderr


def test_healthcheck_fails_without_server(health_server: HealthServer) -> None:
    """The health check exits 1 when nothing listens on the node's port."""
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()

    result = run_healthcheck(port)

    assert result.returncode == 1
    assert f"GET http://127.0.0.1:{port}/health failed" in result.stderr


# Compose


@pytest.fixture(scope="module")
def compose() -> Any:
    return load_yaml(DEPLOY / "compose.yaml")


def nodes_of(compose: Any) -> dict[str, Any]:
    return {
        name: service
        for name, service in compose["services"].items()
        if name != "postgres"
    }


def test_compose_matches_specification() -> None:
    """compose.yaml is valid under the Compose specification's schema."""

    result = run(
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        DEPLOY / "compose.yaml",
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_database_and_three_nodes(compose: Any) -> None:
    """Compose runs one PostgreSQL and three nodes named like their services."""
    nodes = nodes_of(compose)

    assert set(compose["services"]) == {"postgres", "node1", "node2", "node3"}
    for name, service in nodes.items():
        environment = service["environment"]
        assert environment["SEVENTWEETS_NAME"] == name
        assert NODE_NAME.match(name)
        assert environment["SEVENTWEETS_HOST"] == "0.0.0.0"
        assert (
            environment["SEVENTWEETS_ADDRESS"]
            == f"http://{name}:{environment['SEVENTWEETS_PORT']}"
        )
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_compose_nodes_join_through_first(compose: Any) -> None:
    """node1 starts the network, and node2 and node3 seed at node1 once it is healthy."""
    nodes = nodes_of(compose)
    first = nodes["node1"]

    assert "SEVENTWEETS_SEEDS" not in first["environment"]
    for name in ("node2", "node3"):
        assert (
            nodes[name]["environment"]["SEVENTWEETS_SEEDS"]
            == first["environment"]["SEVENTWEETS_ADDRESS"]
        )
        assert nodes[name]["depends_on"]["node1"] == {"condition": "service_healthy"}


def test_compose_services_have_health_checks(compose: Any) -> None:
    """Every service has a health check, and the nodes start once PostgreSQL is healthy."""
    postgres = compose["services"]["postgres"]

    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    for service in nodes_of(compose).values():
        assert service["healthcheck"]["test"] == ["CMD", "seventweets-healthcheck"]
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert service["stop_signal"] == "SIGTERM"


def test_compose_file_holds_no_secret(compose: Any) -> None:
    """Tokens, the cluster secret and the password are required variables, not values."""
    tokens = set()

    for service in compose["services"].values():
        for key, value in service["environment"].items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VARIABLE.match(value), f"{key} holds a value: {value}"
            if key == "SEVENTWEETS_TOKEN":
                tokens.add(value)
            if key == "SEVENTWEETS_DB":
                assert ":" not in value.split("://", 1)[1].split("@")[0], (
                    "password in a DSN"
                )

    assert len(tokens) == 3


def test_compose_creates_database_per_node(compose: Any) -> None:
    """The init script's database list is exactly the databases of the nodes' DSNs."""
    postgres = compose["services"]["postgres"]
    dsns = [
        service["environment"]["SEVENTWEETS_DB"]
        for service in nodes_of(compose).values()
    ]

    databases = postgres["environment"]["SEVENTWEETS_DATABASES"].split()

    assert sorted(databases) == sorted(dsn.rsplit("/", 1)[1] for dsn in dsns)
    assert all(
        dsn.startswith("postgresql://seventweets@postgres:5432/") for dsn in dsns
    )
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]


def test_new_secrets_covers_compose_variables(compose: Any) -> None:
    """new-secrets.sh prints a distinct 256-bit value for every variable compose requires."""
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))

    secrets = new_secrets("compose")

    assert set(secrets) == required
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in secrets.values())
    assert len(set(secrets.values())) == len(secrets)


def postgres_environment(admin_dsn: str) -> dict[str, str]:
    """Return the variables the postgres image sets for its init scripts, for ``admin_dsn``."""
    parameters = psycopg2.extensions.parse_dsn(admin_dsn)
    psql = shutil.which("psql") or str(find_bin_dir() / "psql")
    return {
        **os.environ,
        "PATH": f"{Path(psql).parent}{os.pathsep}{os.environ['PATH']}",
        "PGHOST": parameters.get("host", "127.0.0.1"),
        "PGPORT": str(parameters.get("port", 5432)),
        "PGPASSWORD": parameters.get("password", ""),
        "POSTGRES_USER": parameters["user"],
        "POSTGRES_DB": parameters.get("dbname", "postgres"),
    }


def test_init_script_creates_databases(pg_server: Any) -> None:
    """The postgres init script creates every listed database, dashes included."""
    names = [f"deploy_{os.getpid()}_a", f"deploy-{os.getpid()}-b"]
    environment = {
        **postgres_environment(pg_server.admin_dsn),
        "SEVENTWEETS_DATABASES": " ".join(names),
    }

    result = run(DEPLOY / "postgres-init" / "create-databases.sh", env=environment)

    connection = psycopg2.connect(pg_server.admin_dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)
            )
            created = sorted(row[0] for row in cursor.fetchall())
            for name in created:
                cursor.execute(f'DROP DATABASE "{name}"')
    finally:
        connection.close()
    assert result.returncode == 0, result.stderr
    assert created == sorted(names)


def test_init_script_rejects_invalid_name(pg_server: Any) -> None:
    """The init script exits non-zero on a name outside the node name rules."""
    environment = {
        **postgres_environment(pg_server.admin_dsn),
        "SEVENTWEETS_DATABASES": 'x"; DROP',
    }

    result = run(DEPLOY / "postgres-init" / "create-databases.sh", env=environment)

    assert result.returncode == 1
    assert "invalid database name" in result.stderr


# Kubernetes


@pytest.fixture(scope="module")
def statefulset() -> Any:
    return load_yaml(KUBERNETES / "statefulset.yaml")


def container(statefulset: Any, name: str) -> Any:
    pod = statefulset["spec"]["template"]["spec"]
    (found,) = [
        item
        for item in pod["containers"] + pod["initContainers"]
        if item["name"] == name
    ]
    return found


def manifest_files() -> list[Path]:
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    return [KUBERNETES / name for name in kustomization["resources"]]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_kubernetes(version: str) -> None:
    """Every manifest is valid under Kubernetes' strict schemas, unknown fields included."""

    result = run(
        sys.executable,
        "-m",
        "kubernetes_validate",
        "--strict",
        "--kubernetes-version",
        version,
        *manifest_files(),
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomization_renders_valid_resources(tmp_path: Path) -> None:
    """kubectl kustomize renders the set with a generated Secret that validates."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl not installed; the manifests are still validated one by one"
        )
    shutil.copytree(KUBERNETES, tmp_path / "kubernetes")
    secrets = new_secrets("kubernetes")
    (tmp_path / "kubernetes" / "secrets.env").write_text(
        "".join(f"{key}={value}\n" for key, value in secrets.items()), encoding="utf-8"
    )

    rendered = run(kubectl, "kustomize", tmp_path / "kubernetes")
    (tmp_path / "rendered.yaml").write_text(rendered.stdout, encoding="utf-8")
    validated = run(
        sys.executable,
        "-m",
        "kubernetes_validate",
        "--strict",
        tmp_path / "rendered.yaml",
    )

    assert rendered.returncode == 0, rendered.stderr
    assert validated.returncode == 0, validated.stdout + validated.stderr
    kinds = sorted(document["kind"] for document in yaml.safe_load_all(rendered.stdout))
    assert kinds == ["PodDisruptionBudget", "Secret", "Service", "StatefulSet"]


def test_statefulset_behind_headless_service(statefulset: Any) -> None:
    """The StatefulSet's pods get DNS names from a headless Service that keeps unready pods."""
    service = load_yaml(KUBERNETES / "service.yaml")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]

    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"].items() <= labels.items()
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert statefulset["spec"]["podManagementPolicy"] == "OrderedReady"


def pod_environment(statefulset: Any, pod_name: str, namespace: str) -> dict[str, str]:
    """Return the node container's variables for one pod, as the kubelet expands them."""
    environment = {"POD_NAME": pod_name, "POD_NAMESPACE": namespace}
    for variable in container(statefulset, "node")["env"]:
        if "value" in variable:
            value = re.sub(
                r"\$\((\w+)\)",
                lambda match: environment[match.group(1)],
                variable["value"],
            )
            environment[variable["name"]] = value
        elif "secretKeyRef" in variable["valueFrom"]:
            environment[variable["name"]] = "secret"
    return environment


def test_pods_seed_at_pods_zero_and_one(statefulset: Any, tmp_path: Path) -> None:
    """Pods 0 and 1 seed at each other, and pods 2 to 4 at pod 0, then pod 1."""
    node = container(statefulset, "node")
    assert node["command"][:2] == ["tini", "--"]
    fake_node = tmp_path / "seventweets"
    fake_node.write_text('#!/bin/sh\necho "$SEVENTWEETS_SEEDS"\n', encoding="utf-8")
    fake_node.chmod(0o755)
    addresses = {}
    seeds = {}

    for ordinal in range(5):
        environment = pod_environment(statefulset, f"seventweets-{ordinal}", "tweets")
        environment["PATH"] = f"{tmp_path}{os.pathsep}{os.environ['PATH']}"
        result = run(*node["command"][2:], env=environment)
        assert result.returncode == 0, result.stderr
        addresses[ordinal] = environment["SEVENTWEETS_ADDRESS"]
        seeds[ordinal] = result.stdout.strip()

    assert addresses[0] == "http://seventweets-0.seventweets.tweets.svc:8000"
    assert seeds[0] == addresses[1]
    assert seeds[1] == addresses[0]
    for ordinal in range(2, 5):
        assert seeds[ordinal] == f"{addresses[0]},{addresses[1]}"


def test_pod_address_uses_stable_dns_name(statefulset: Any) -> None:
    """Each pod is named after itself and is reached through its DNS name on 0.0.0.0:8000."""

    environment = pod_environment(statefulset, "seventweets-3", "default")

    assert environment["SEVENTWEETS_NAME"] == "seventweets-3"
    assert NODE_NAME.match(environment["SEVENTWEETS_NAME"])
    assert (
        environment["SEVENTWEETS_ADDRESS"]
        == "http://seventweets-3.seventweets.default.svc:8000"
    )
    assert environment["SEVENTWEETS_HOST"] == "0.0.0.0"
    assert (
        environment["SEVENTWEETS_DB"]
        == "postgresql://seventweets@127.0.0.1:5432/seventweets"
    )


def test_scaling_needs_only_replica_count() -> None:
    """No manifest names a pod other than the seeds, so the replica count sets the size."""

    pod_names = set()
    for path in manifest_files():
        pod_names.update(
            re.findall(r"seventweets-\d+", path.read_text(encoding="utf-8"))
        )

    assert pod_names == {"seventweets-0", "seventweets-1"}


def test_node_probes_use_health(statefulset: Any) -> None:
    """Startup, readiness and liveness probes ask /health on the node's named port."""
    node = container(statefulset, "node")

    assert node["ports"] == [{"name": "http", "containerPort": 8000}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert node[probe]["httpGet"] == {"path": "/health", "port": "http"}
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 10


def test_secrets_come_from_secret(statefulset: Any) -> None:
    """Every secret variable is read from the generated Secret, under a key it holds."""
    keys = set(new_secrets("kubernetes"))
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    (generator,) = kustomization["secretGenerator"]
    references = []

    for item in (container(statefulset, "node"), container(statefulset, "postgres")):
        for variable in item["env"]:
            if SECRET_NAME.search(variable["name"]):
                references.append(variable["valueFrom"]["secretKeyRef"])

    assert len(references) == 4
    assert {reference["name"] for reference in references} == {generator["name"]}
    assert {reference["key"] for reference in references} == keys


def test_database_sidecar_keeps_claimed_volume(statefulset: Any) -> None:
    """PostgreSQL runs as a native sidecar on a volume claimed for each pod."""
    postgres = container(statefulset, "postgres")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]

    assert postgres["restartPolicy"] == "Always"
    assert "pg_isready" in postgres["startupProbe"]["exec"]["command"]
    assert {
        "name": claim["metadata"]["name"],
        "mountPath": "/var/lib/postgresql/data",
    } in postgres["volumeMounts"]
    pgdata = {variable["name"]: variable.get("value") for variable in postgres["env"]}[
        "PGDATA"
    ]
    assert pgdata.startswith("/var/lib/postgresql/data/")


# systemd


def unit_settings() -> list[tuple[str, str, str]]:
    """Return the unit's settings as (section, key, value), repeated keys kept in order."""
    settings = []
    section = ""
    for line in (
        (DEPLOY / "systemd" / "seventweets@.service")
        .read_text(encoding="utf-8")
        .splitlines()
    ):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.append((section, key, value))
    return settings


def test_systemd_unit_passes_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts an instance of the unit without a warning."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart exists, and the node is not installed under /opt here.
    text = (DEPLOY / "systemd" / "seventweets@.service").read_text(encoding="utf-8")
    instance = tmp_path / "seventweets@alice.service"
    instance.write_text(
        re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", text), encoding="utf-8"
    )

    result = run(analyze, "verify", "--man=no", instance)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_systemd_unit_stops_with_sigterm() -> None:
    """The unit sends SIGTERM to the node alone and waits long enough for its leave."""
    service = {
        key: value for section, key, value in unit_settings() if section == "Service"
    }
    environment = [
        value for section, key, value in unit_settings() if key == "Environment"
    ]

    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) >= 10
    assert shlex.split(service["ExecStart"]) == ["/opt/seventweets/bin/seventweets"]
    assert "SEVENTWEETS_NAME=%i" in environment
    assert service["EnvironmentFile"] == "/etc/seventweets/%i.env"
