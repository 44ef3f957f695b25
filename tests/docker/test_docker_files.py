"""docker/compose.yaml, docker/kuberay.yaml and docker/Dockerfile, checked without a Docker
engine: every script, port, environment variable, secret and image they name exists or is
defined, token authentication is on everywhere Ray runs, and nothing but the dashboard is
published on the host (and only on 127.0.0.1)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
IMAGE_WORKDIR = REPO  # the image's /app holds the repository layout (Dockerfile: WORKDIR /app)

SCRIPTS_TEXT = "\n".join(
    path.read_text() for path in sorted(DOCKER.iterdir()) if path.suffix in (".sh", ".py")
)
# Read by Ray, pyarrow or MinIO rather than by the scripts.
EXTERNAL_VARIABLES = {
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
    "RAY_USAGE_STATS_ENABLED",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_ENDPOINT_URL",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S",  # Ray's own: how long a node drains on SIGTERM
}
# What each script cannot run without (each is also checked to appear in the script).
REQUIRED_VARIABLES = {
    "start-head.sh": set(),
    "start-worker.sh": {"RAY_HEAD_ADDRESS"},
    "run-job.sh": {"RAY_HEAD_ADDRESS", "TUNE_CKPT_STORAGE_PATH"},
    "create-bucket.py": {"TUNE_CKPT_STORAGE_PATH"},
    "healthcheck.py": set(),
}
RAY_SCRIPTS = {"start-head.sh", "start-worker.sh", "run-job.sh"}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?-)([^}]*))?\}")


def interpolate(value: Any) -> str:
    """A compose value with ${VAR:-default} / ${VAR-default} replaced by the default."""
    return INTERPOLATION.sub(lambda m: m.group(3) or "", str(value))


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def load_kuberay() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DOCKER / "kuberay.yaml").read_text()) if doc]


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (DOCKER / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def copied_into_image() -> set[str]:
    """Repository paths the Dockerfile copies into the image."""
    copied: set[str] = set()
    for line in dockerfile_lines():
        if line.startswith("COPY "):
            *sources, _destination = line.split()[1:]
            copied.update(source.rstrip("/") for source in sources if not source.startswith("--"))
    return copied


def script_of(command: list[str]) -> str:
    """The docker/ script a container command runs (``python docker/x.py`` or ``docker/x.sh``)."""
    args = [arg for arg in command if arg not in ("python", "python3", "CMD", "CMD-SHELL")]
    assert args and args[0].startswith("docker/"), command
    return args[0]


def check_script(relative: str) -> None:
    path = IMAGE_WORKDIR / relative
    assert path.is_file(), f"{relative} does not exist"
    assert relative in copied_into_image(), f"the Dockerfile does not copy {relative}"
    if path.suffix == ".sh":
        assert os.access(path, os.X_OK), f"{relative} is not executable"


def check_variables(where: str, script: str, env: dict[str, Any]) -> None:
    """Each variable is read by a docker/ script or by Ray/pyarrow, and the script's required
    ones are set."""
    for name in env:
        assert name in EXTERNAL_VARIABLES or re.search(rf"\b{name}\b", SCRIPTS_TEXT), (
            f"{where} sets {name}, which nothing reads"
        )
    name = Path(script).name
    for required in REQUIRED_VARIABLES[name]:
        assert required in (DOCKER / name).read_text()
        assert interpolate(env.get(required, "")), f"{where} runs {name} without {required}"
    if name in RAY_SCRIPTS or name == "healthcheck.py":
        assert env.get("RAY_AUTH_MODE") == "token", f"{where}: token authentication is off"


# -- compose.yaml ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def our_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_compose_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"ray-head", "ray-worker", "minio", "create-bucket", "sweep"}
    worker = compose["services"]["ray-worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker, "a fixed container name prevents --scale"


def test_compose_image_is_built_from_this_repository(compose: dict[str, Any]) -> None:
    services = our_services(compose)
    assert set(services) == {"ray-head", "ray-worker", "create-bucket", "sweep"}
    images = {interpolate(svc["image"]) for svc in services.values()}
    assert images == {"tune-ckpt:dev"}
    for svc in services.values():
        context = (DOCKER / svc["build"]["context"]).resolve()
        assert context == REPO
        assert (context / svc["build"]["dockerfile"]).is_file()
    minio = interpolate(compose["services"]["minio"]["image"])
    assert re.fullmatch(r"minio/minio:RELEASE\.[0-9TZ-]+", minio), "pin MinIO's release"


def test_compose_commands_and_healthchecks_name_existing_scripts(compose: dict[str, Any]) -> None:
    for name, svc in our_services(compose).items():
        check_script(script_of(svc["command"]))
        health = svc.get("healthcheck", {})
        if health and not health.get("disable"):
            check_script(script_of(health["test"]))
        assert name == "create-bucket" or svc.get("init") is True, f"{name}: no init process"


def test_compose_environment_is_defined(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in our_services(compose).items():
        env = svc["environment"]
        check_variables(name, script_of(svc["command"]), env)
        if "healthcheck" in svc and not svc["healthcheck"].get("disable"):
            check_variables(f"{name} (health check)", "docker/healthcheck.py", env)
        if "RAY_HEAD_ADDRESS" in env:
            host, port = interpolate(env["RAY_HEAD_ADDRESS"]).split(":")
            assert host in services and services[host]["command"] == ["docker/start-head.sh"]
            assert port == interpolate(services[host]["environment"].get("RAY_PORT", "6379"))
        if "AWS_ENDPOINT_URL" in env:
            endpoint = urllib.parse.urlsplit(interpolate(env["AWS_ENDPOINT_URL"]))
            assert endpoint.hostname == "minio"
            minio_command = services["minio"]["command"]
            assert minio_command[minio_command.index("--address") + 1] == f":{endpoint.port}"
        if "TUNE_CKPT_STORAGE_PATH" in env:
            assert interpolate(env["TUNE_CKPT_STORAGE_PATH"]).startswith("s3://")
    # MinIO's root user is the credentials the others use.
    minio_env = services["minio"]["environment"]
    sweep_env = services["sweep"]["environment"]
    assert minio_env["MINIO_ROOT_USER"] == sweep_env["AWS_ACCESS_KEY_ID"]
    assert minio_env["MINIO_ROOT_PASSWORD"] == sweep_env["AWS_SECRET_ACCESS_KEY"]


def test_compose_variables_have_defaults_and_are_documented(compose: dict[str, Any]) -> None:
    text = (DOCKER / "compose.yaml").read_text()
    readme = (DOCKER / "README.md").read_text()
    names = set()
    for match in INTERPOLATION.finditer(text):
        names.add(match.group(1))
        assert match.group(2), f"${{{match.group(1)}}} has no default"
    assert names
    for name in names:
        assert f"`{name}`" in readme, f"docker/README.md does not document {name}"


def test_compose_token_is_a_secret_not_in_the_image(compose: dict[str, Any]) -> None:
    secrets = compose["secrets"]
    for name, svc in our_services(compose).items():
        if script_of(svc["command"]).rsplit("/", 1)[-1] not in RAY_SCRIPTS:
            continue
        assert svc["secrets"] == ["ray_auth_token"], name
        assert svc["environment"]["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
        assert "RAY_AUTH_TOKEN" not in svc["environment"], f"{name}: token in the environment"
    source = Path(secrets["ray_auth_token"]["file"])
    assert source.parts[:2] == (".", "secrets") or source.parts[0] == "secrets"
    assert "secrets/" in (DOCKER / ".gitignore").read_text().split()
    assert all(not path.startswith("docker/secrets") for path in copied_into_image())
    assert "docker" not in copied_into_image(), "copy docker/ scripts by name, not the folder"


def test_compose_publishes_only_the_dashboard_on_loopback(compose: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in compose["services"].items() if "ports" in svc}
    assert set(published) == {"ray-head"}
    head_env = compose["services"]["ray-head"]["environment"]
    for mapping in published["ray-head"]:
        host_ip, _host_port, container_port = interpolate(mapping).split(":")
        assert host_ip == "127.0.0.1"
        assert container_port == interpolate(head_env["RAY_DASHBOARD_PORT"])
    for svc in compose["services"].values():
        assert "expose" not in svc and svc.get("network_mode") != "host"


def test_compose_job_waits_for_cluster_and_bucket(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dependency, spec in svc.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            target = services[dependency]
            if spec["condition"] == "service_healthy":
                assert "test" in target.get("healthcheck", {}), f"{dependency}: no health check"
            elif spec["condition"] == "service_completed_successfully":
                assert target.get("restart") == "no"
    assert services["sweep"]["depends_on"] == {
        "ray-head": {"condition": "service_healthy"},
        "ray-worker": {"condition": "service_healthy"},
        "create-bucket": {"condition": "service_completed_successfully"},
    }
    assert services["create-bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert services["ray-worker"]["depends_on"] == {"ray-head": {"condition": "service_healthy"}}


# -- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_layers_and_user() -> None:
    lines = dockerfile_lines()
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY ")]
    first_copy = lines[copies[0]]
    assert first_copy.split()[1:-1] == ["pyproject.toml"], "copy pyproject.toml alone first"
    package_copy = next(i for i in copies if "tune_ckpt" in lines[i].split()[1:-1])
    installs = [i for i, line in enumerate(lines) if "pip install" in line]
    assert any(copies[0] < i < package_copy for i in installs), "install deps before the code"
    assert any(i > package_copy and "--no-deps" in lines[i] for i in installs)
    for source in copied_into_image():
        assert (REPO / source).exists(), f"the Dockerfile copies missing {source}"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    patterns = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**", "the build context starts from nothing"
    assert not [
        p
        for p in patterns
        if p.startswith(("!docker/secrets", "!docker/**", "!docker"))
        and not p.startswith(("!docker/*.sh", "!docker/*.py"))
    ]


def test_dockerfile_ray_version_matches_kuberay() -> None:
    version = next(
        line.split("=", 1)[1] for line in dockerfile_lines() if line.startswith("ARG RAY_VERSION=")
    )
    (cluster,) = [doc for doc in load_kuberay() if doc["kind"] == "RayCluster"]
    assert cluster["spec"]["rayVersion"] == version


# -- kuberay.yaml ------------------------------------------------------------------------------


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod template in the manifest."""
    found = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "RayCluster":
            found.append((f"{name} head", doc["spec"]["headGroupSpec"]["template"]["spec"]))
            for group in doc["spec"]["workerGroupSpecs"]:
                found.append((f"{name} {group['groupName']}", group["template"]["spec"]))
        elif doc["kind"] in ("Deployment", "Job"):
            found.append((name, doc["spec"]["template"]["spec"]))
    return found


def container_env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A container's environment: its ConfigMaps' values, its Secrets' keys, its own env."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            (config,) = [
                d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
            ]
            env.update(config["data"])
        else:
            env.update(dict.fromkeys(secret_keys(source["secretRef"]["name"]), "<secret>"))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "<secret>")
    return env


def secret_keys(name: str) -> set[str]:
    """The keys that docker/kuberay.yaml and docker/README.md say to put in Secret ``name``
    (their ``kubectl create secret generic NAME --from-literal=KEY=...`` commands)."""
    found = []
    for doc in (DOCKER / "kuberay.yaml", DOCKER / "README.md"):
        text = doc.read_text().replace("\n#", "\n")  # the manifest has it in comments
        start = text.find(f"kubectl create secret generic {name} ")
        assert start >= 0, f"{doc.name} does not say how to create Secret {name}"
        command = re.split(r"(?<!\\)\n", text[start:], maxsplit=1)[0]
        found.append(set(re.findall(r"--from-literal=([A-Za-z_]+)=", command)))
    assert found[0] == found[1] and found[0], (name, found)
    return found[0]


def test_kuberay_cluster_shape() -> None:
    docs = load_kuberay()
    (cluster,) = [doc for doc in docs if doc["kind"] == "RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (workers,) = cluster["spec"]["workerGroupSpecs"]
    assert workers["replicas"] == 2
    (job,) = [doc for doc in docs if doc["kind"] == "Job"]
    (sweep,) = job["spec"]["template"]["spec"]["containers"]
    env = container_env(sweep, docs)
    head_container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    gcs_ports = [p["containerPort"] for p in head_container["ports"] if p["name"] == "gcs-server"]
    assert env["RAY_HEAD_ADDRESS"] == f"{cluster['metadata']['name']}-head-svc:{gcs_ports[0]}"


def test_kuberay_images_scripts_and_environment() -> None:
    docs = load_kuberay()
    compose = load_compose()
    our_image = interpolate(compose["services"]["ray-head"]["image"])
    minio_image = interpolate(compose["services"]["minio"]["image"])
    for where, spec in pod_specs(docs):
        containers = spec.get("initContainers", []) + spec["containers"]
        for container in containers:
            label = f"{where} {container['name']}"
            env = container_env(container, docs)
            if container["image"] == minio_image:
                continue
            assert container["image"] == our_image, f"{label}: unknown image"
            assert spec["securityContext"]["runAsNonRoot"] is True
            runs_ray = where.startswith("RayCluster/")  # KubeRay runs `ray start` itself there
            if "command" in container:
                script = script_of(container["command"])
                check_script(script)
                check_variables(label, script, env)
                runs_ray = Path(script).name in RAY_SCRIPTS
            if runs_ray:
                assert env.get("RAY_AUTH_MODE") == "token", f"{label}: token auth is off"
                (token,) = [e for e in container.get("env", []) if e["name"] == "RAY_AUTH_TOKEN"]
                ref = token["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secret_keys(ref["name"])
            for name, value in env.items():
                assert name in EXTERNAL_VARIABLES or re.search(rf"\b{name}\b", SCRIPTS_TEXT), (
                    f"{label} sets {name}, which nothing reads"
                )
                assert value != "", f"{label}: {name} is empty"


def test_kuberay_minio_endpoint_and_secrets() -> None:
    docs = load_kuberay()
    (settings,) = [d for d in docs if d["kind"] == "ConfigMap"]
    endpoint = urllib.parse.urlsplit(settings["data"]["AWS_ENDPOINT_URL"])
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["metadata"]["name"] == endpoint.hostname
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == endpoint.port]
    (minio,) = [d for d in docs if d["kind"] == "Deployment"]
    assert service["spec"]["selector"] == minio["spec"]["template"]["metadata"]["labels"]
    (container,) = minio["spec"]["template"]["spec"]["containers"]
    assert port["targetPort"] in [p["containerPort"] for p in container["ports"]]
    assert container["args"][container["args"].index("--address") + 1] == f":{port['targetPort']}"
    for item in container["env"]:
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["key"] in secret_keys(ref["name"])
    assert "ports" not in service["spec"] or service["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_kuberay_workers_get_time_to_drain() -> None:
    """Deleting a worker pod drains its node first (preStop: ``ray drain-node`` with a
    deadline, then a wait), Ray drains again on SIGTERM, and Kubernetes waits for both."""
    from ray.core.generated import autoscaler_pb2
    from ray.scripts.scripts import drain_node

    (cluster,) = [doc for doc in load_kuberay() if doc["kind"] == "RayCluster"]
    (workers,) = cluster["spec"]["workerGroupSpecs"]
    spec = workers["template"]["spec"]
    (container,) = spec["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/bash", "-c"]
    drain, _, wait = command[2].partition(" && ")
    words = shlex.split(drain)
    assert words[:2] == ["ray", "drain-node"]
    options = dict(zip(words[2::2], words[3::2], strict=True))
    # Only options the installed Ray's (hidden) `ray drain-node` has, and a real reason.
    assert set(options) <= {opt for param in drain_node.params for opt in param.opts}
    assert autoscaler_pb2.DrainNodeReason.Value(options["--reason"]) == 2  # PREEMPTION
    deadline_s = int(options["--deadline-remaining-seconds"])
    assert wait == f"sleep {deadline_s}"
    sigterm_s = float(
        container_env(container, load_kuberay())["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"]
    )
    assert spec["terminationGracePeriodSeconds"] > deadline_s + sigterm_s


# -- healthcheck.py ----------------------------------------------------------------------------


def test_healthcheck_reads_active_and_idle_nodes_not_failed_ones() -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER / "healthcheck.py")
    assert spec and spec.loader
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    a, b, c = ("a" * 56, "b" * 56, "c" * 56)
    status = f"""======== Autoscaler status: 2026-01-01 00:00:00 ========
Node status
---------------------------------------------------------------
Active:
 1 node_{a}
Idle:
 1 node_{b}
Pending:
 (no pending nodes)
Recent failures:
 node_{c}
"""
    assert healthcheck.alive_node_ids(status) == {a, b}
    assert healthcheck.alive_node_ids("No cluster status.") == set()
