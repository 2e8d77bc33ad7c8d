"""Static checks of the compose stack, its Dockerfiles and .env.example.

No Docker daemon is needed: the files are parsed and checked for the properties a
production compose file must have (health checks, dependency conditions, pinned images,
documented variables, required secrets, files that exist). When the `docker compose`
plugin is installed its own validator runs too; it needs no daemon either.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.static

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
FEAST_REPO = REPO_ROOT / "feature_repo"
API_DOCKERFILE = DOCKER_DIR / "api.Dockerfile"
AIRFLOW_DOCKERFILE = DOCKER_DIR / "airflow.Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

EXPECTED_SERVICES = {
    "postgres",
    "minio",
    "minio-init",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "mlflow",
    "scoring-api",
    "spark-master",
    "spark-worker",
}
ONE_SHOT_SERVICES = {"minio-init", "airflow-init"}
AIRFLOW_LONG_RUNNING = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
SPARK_SERVICES = {"spark-master", "spark-worker"}

# Secrets: every use in the compose file must be ${NAME:?message}, so that a missing value
# stops compose instead of starting a service with an empty password.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "FEAST_DB_PASSWORD",
    "REDIS_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "_AIRFLOW_WWW_USER_PASSWORD",
    "FRAUD_API_KEY",
}

# Every variable the code or the stack reads, documented in .env.example.
CONFIG_VARIABLES = {
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "FRAUD_S3_BUCKET",
    "S3_HEALTHCHECK_PATH",
    "REDIS_CONNECTION_STRING",
    "REDIS_PASSWORD",
    "SPARK_MASTER",
    "SPARK_DRIVER_MEMORY",
    "SPARK_SHUFFLE_PARTITIONS",
    "SPARK_LOCAL_IP",
    "SPARK_JARS_DIR",
    "FEAST_REGISTRY_PATH",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_ARTIFACTS_DESTINATION",
    "FRAUD_API_KEY",
    "FRAUD_API_AUTH_DISABLED",
    "FRAUD_MODEL_NAME",
    "FRAUD_MODEL_ALIAS",
    "FRAUD_MODEL_REFRESH_SECONDS",
    "FRAUD_BATCH_MAX_TRANSACTIONS",
    "FRAUD_REDIS_TIMEOUT_SECONDS",
    "FRAUD_FEATURE_SERVICE",
    "FEAST_REPO_PATH",
    "AIRFLOW_UID",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "_AIRFLOW_WWW_USER_USERNAME",
    "_AIRFLOW_WWW_USER_PASSWORD",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
}

# ${NAME...} not preceded by "$" ("$${NAME}" is compose's escape for a literal "$").
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)")
_ENV_LINE = re.compile(r"^\s*(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|(^|_)API_KEY$|ACCESS_KEY", re.I)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict), f"{COMPOSE_FILE} does not hold a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "the compose file defines no services"
    return services


# --------------------------------------------------------------------------- helpers


def _interpolations(text: str) -> list[tuple[str, str]]:
    """(name, modifier) of every ${NAME<modifier>} in ``text``, e.g. ("A", ":?msg").

    Full-line comments are skipped: compose does not interpolate them.
    """
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return _INTERPOLATION.findall(code)


def _env_example() -> dict[str, tuple[str, bool]]:
    """name -> (value, commented out) of every assignment in .env.example."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line)
        if match:
            entries[match.group(2)] = (match.group(3).strip(), bool(match.group(1)))
    return entries


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    assert isinstance(deps, dict), "depends_on must be the long form with conditions"
    return deps


def _parse_image(ref: str) -> tuple[str, str | None]:
    """Split "registry/name:tag@digest" into (name, tag or None)."""
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
        return name, tag
    return ref, None


def _assert_pinned(ref: str, where: str) -> None:
    assert "${" not in ref or ref.startswith("fraud-feature-store/"), (
        f"{where}: image {ref!r} takes its name from a variable"
    )
    name, tag = _parse_image(ref)
    assert tag, f"{where}: image {ref!r} has no tag"
    assert tag.lower() != "latest" and not tag.lower().startswith("latest-"), (
        f"{where}: image {ref!r} uses 'latest'"
    )
    if not name.startswith("fraud-feature-store/"):
        # A version, not a moving name: RELEASE.2025-..., 16.13-bookworm, 3.3.2-python3.11.
        assert re.search(r"\d+\.\d+|\d{4}-\d{2}-\d{2}", tag), (
            f"{where}: tag of {ref!r} is not a version"
        )


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    buffer = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        buffer = ""
    assert not buffer, f"{path}: dangling line continuation"
    return instructions


def _from_images(path: Path) -> list[tuple[str, str | None]]:
    """(resolved image, stage name) of every FROM, with ARG defaults substituted."""
    args: dict[str, str] = {}
    stages: list[tuple[str, str | None]] = []
    stage_names: set[str] = set()
    for keyword, rest in _dockerfile_instructions(path):
        if keyword == "ARG" and "=" in rest and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif keyword == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            if image not in stage_names:
                stages.append((image, stage))
            if stage:
                stage_names.add(stage)
    return stages


def _copy_sources(path: Path) -> list[str]:
    """Build-context sources of every COPY/ADD (those without --from)."""
    sources: list[str] = []
    for keyword, rest in _dockerfile_instructions(path):
        if keyword not in {"COPY", "ADD"}:
            continue
        parts = rest.split()
        if any(p.startswith("--from=") for p in parts):
            continue
        operands = [p for p in parts if not p.startswith("--")]
        sources.extend(operands[:-1])
    return sources


# --------------------------------------------------------------------------- compose file


def test_compose_file_parses_without_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert compose.get("name") == "fraud-feature-store"


def test_all_services_are_defined(services: dict[str, dict[str, Any]]) -> None:
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"services missing from the compose file: {sorted(missing)}"


def test_spark_cluster_is_an_optional_scalable_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in SPARK_SERVICES:
        assert services[name].get("profiles") == ["spark"], name
        # Executors run the window kernels in Python: the driver's image, Python and packages.
        assert services[name]["image"] == services["airflow-scheduler"]["image"], name
    worker = services["spark-worker"]
    # A fixed container name or host port would make `--scale spark-worker=3` fail.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "spark://spark-master:7077" in worker["command"]
    assert not any("profiles" in services[n] for n in EXPECTED_SERVICES - SPARK_SERVICES)


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart") == "no", f"{name} is a one-shot job"
            continue
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"{name} has no healthcheck"
        assert not check.get("disable", False), f"{name} disables its healthcheck"
        test = check.get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"} and len(test) >= 2, (name, test)
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name} healthcheck has no {key}"
        assert service.get("restart") in {"unless-stopped", "always"}, name


def test_redis_requires_a_password_and_its_healthcheck_authenticates(
    services: dict[str, dict[str, Any]],
) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == (
        "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}"
    )
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_depends_on_uses_the_right_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in _depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            expected = (
                "service_completed_successfully"
                if target in ONE_SHOT_SERVICES
                else "service_healthy"
            )
            assert spec.get("condition") == expected, f"{name} -> {target}: {spec}"
            if target in SPARK_SERVICES and name not in SPARK_SERVICES:
                # Only with the "spark" profile; the stack must start without it.
                assert spec.get("required") is False, f"{name} -> {target}"


def test_startup_order(services: dict[str, dict[str, Any]]) -> None:
    assert _depends_on(services["minio-init"]) == {"minio": {"condition": "service_healthy"}}
    for name in AIRFLOW_LONG_RUNNING:
        deps = _depends_on(services[name])
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
    assert {"postgres", "redis", "minio-init"} <= _depends_on(services["airflow-init"]).keys()
    assert {"postgres", "redis", "mlflow", "minio-init"} <= _depends_on(
        services["scoring-api"]
    ).keys()
    assert {"postgres", "minio-init"} <= _depends_on(services["mlflow"]).keys()
    assert "spark-master" in _depends_on(services["spark-worker"])


def test_airflow_services_share_the_common_anchor(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    common = compose["x-airflow-common"]
    assert common["build"]["dockerfile"] == "docker/airflow.Dockerfile"
    env = common["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    assert "../pipelines:/opt/airflow/dags:ro" in common["volumes"]
    assert any(v.startswith("../feature_repo:") for v in common["volumes"])
    commands = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    for name in (*commands, "airflow-init"):
        service = services[name]
        assert service["image"] == common["image"], name
        assert service["build"] == common["build"], name
        fernet = service["environment"]["AIRFLOW__CORE__FERNET_KEY"]
        assert fernet == env["AIRFLOW__CORE__FERNET_KEY"], name
        if name in commands:
            assert service["command"] == commands[name]
    init_env = services["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init_env["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_app_configuration_points_at_the_compose_services(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("scoring-api", "airflow-scheduler"):
        env = services[name]["environment"]
        assert env["REDIS_CONNECTION_STRING"] == (
            "redis:6379,password=${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}"
        ), name
        assert env["FEAST_REGISTRY_PATH"].startswith("postgresql+psycopg://feast:${"), name
        assert env["FEAST_REGISTRY_PATH"].endswith("@postgres:5432/feast"), name
        assert env["AWS_ENDPOINT_URL_S3"] == "${AWS_ENDPOINT_URL_S3:-http://minio:9000}"
        assert env["MLFLOW_TRACKING_URI"] == "${MLFLOW_TRACKING_URI:-http://mlflow:5000}"
    api = services["scoring-api"]
    assert api["build"]["dockerfile"] == "docker/api.Dockerfile"
    assert any(p.endswith(":8080") for p in api["ports"])
    assert api["environment"]["FRAUD_API_KEY"].startswith("${FRAUD_API_KEY:?")
    for name in (
        "FRAUD_MODEL_REFRESH_SECONDS",
        "FRAUD_BATCH_MAX_TRANSACTIONS",
        "FRAUD_REDIS_TIMEOUT_SECONDS",
    ):
        assert api["environment"][name].startswith(f"${{{name}:-"), name
    scheduler = services["airflow-scheduler"]["environment"]
    assert scheduler["FRAUD_FEATURE_SERVICE"].startswith("${FRAUD_FEATURE_SERVICE:-")
    # The images install the packages without the source tree: each names its Feast repo.
    assert api["environment"]["FEAST_REPO_PATH"] == "/app/feature_repo"
    assert services["airflow-scheduler"]["environment"]["FEAST_REPO_PATH"] == (
        "/opt/airflow/feature_repo"
    )
    mlflow = services["mlflow"]["command"]
    assert mlflow[:2] == ["mlflow", "server"]
    backend = mlflow[mlflow.index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql+psycopg://mlflow:") and backend.endswith("/mlflow")
    artifacts = mlflow[mlflow.index("--artifacts-destination") + 1]
    assert artifacts.startswith("${MLFLOW_ARTIFACTS_DESTINATION:-s3://")
    assert artifacts.endswith("/mlflow}")


def test_postgres_runs_the_init_script_and_minio_init_creates_the_bucket(
    services: dict[str, dict[str, Any]],
) -> None:
    volumes = services["postgres"]["volumes"]
    assert (
        "./postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-init-databases.sh:ro"
        in volumes
    )
    script = (DOCKER_DIR / "postgres" / "init-databases.sh").read_text(encoding="utf-8")
    for database in ("airflow", "mlflow", "feast"):
        assert re.search(rf"^create_database {database} ", script, re.M), database
    init = services["minio-init"]
    script = "\n".join(init["command"])
    assert 'mc mb --ignore-existing "local/$${FRAUD_S3_BUCKET}"' in script
    assert init["environment"]["FRAUD_S3_BUCKET"] == "${FRAUD_S3_BUCKET:-fraud-feature-store}"


def test_required_secrets_fail_loudly_when_missing(compose_text: str) -> None:
    uses = _interpolations(compose_text)
    used = {name for name, _ in uses}
    assert used >= REQUIRED_SECRETS, sorted(REQUIRED_SECRETS - used)
    for name, modifier in uses:
        if name in REQUIRED_SECRETS:
            assert modifier.startswith(":?") and len(modifier) > 2, (
                f"${{{name}{modifier}}} must be ${{{name}:?message}}"
            )


def test_every_interpolated_variable_is_documented(compose_text: str) -> None:
    documented = _env_example()
    used = {name for name, _ in _interpolations(compose_text)}
    assert used, "no ${VAR} found: the interpolation pattern is broken"
    undocumented = used - documented.keys()
    assert not undocumented, f"not in .env.example: {sorted(undocumented)}"
    # Compose interpolates from the env file: a variable it uses must not be commented out.
    commented = {name for name in used if documented[name][1]}
    assert not commented, f"commented out in .env.example: {sorted(commented)}"


def test_every_configuration_variable_is_documented_with_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    documented = _env_example()
    missing = CONFIG_VARIABLES - documented.keys()
    assert not missing, f"not in .env.example: {sorted(missing)}"
    for index, line in enumerate(lines):
        match = _ENV_LINE.match(line)
        if not match:
            continue
        # The assignment, or the block of assignments it belongs to, follows a comment.
        previous = index - 1
        while previous >= 0 and _ENV_LINE.match(lines[previous]):
            previous -= 1
        assert previous >= 0 and lines[previous].lstrip().startswith("#"), (
            f".env.example: {match.group(2)} has no comment"
        )


def test_env_example_holds_only_placeholder_secrets() -> None:
    for name, (value, _) in _env_example().items():
        if _SECRET_NAME.search(name):
            assert value == "" or value.startswith("change-me"), (
                f".env.example: {name} must be a change-me placeholder"
            )
        for secret in re.findall(r"password=([^,]*)|://[^:/@]+:([^@]*)@", value):
            text = "".join(secret)
            assert text.startswith("change-me"), f".env.example: {name} embeds a credential"


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service, f"{name} has no image"
        _assert_pinned(service["image"], f"service {name}")
    for dockerfile in (API_DOCKERFILE, AIRFLOW_DOCKERFILE):
        for image, _ in _from_images(dockerfile):
            _assert_pinned(image, dockerfile.name)


def _referenced_paths(services: dict[str, dict[str, Any]]) -> dict[Path, str]:
    """Every host path the stack needs -> where it is referenced."""
    paths: dict[Path, str] = {}
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DOCKER_DIR / build["context"]).resolve()
            paths[context] = f"{name}: build context"
            dockerfile = context / build["dockerfile"]
            paths[dockerfile] = f"{name}: dockerfile"
            if dockerfile.is_file():
                for source in _copy_sources(dockerfile):
                    paths[(context / source).resolve()] = f"{dockerfile.name}: COPY {source}"
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith((".", "/")):
                paths[(DOCKER_DIR / host).resolve()] = f"{name}: mount {host}"
    return paths


def test_referenced_files_exist(services: dict[str, dict[str, Any]]) -> None:
    paths = _referenced_paths(services)
    # Sanity: the walk found the build files, the init script and the DAG folder.
    assert API_DOCKERFILE in paths and AIRFLOW_DOCKERFILE in paths
    assert DOCKER_DIR / "postgres" / "init-databases.sh" in paths
    assert REPO_ROOT / "requirements" / "lock.txt" in paths
    assert REPO_ROOT / "pipelines" in paths
    missing = {
        str(path.relative_to(REPO_ROOT)): where
        for path, where in paths.items()
        if not path.exists() and path != FEAST_REPO
    }
    assert not missing, f"referenced but missing: {missing}"
    script = DOCKER_DIR / "postgres" / "init-databases.sh"
    assert script.stat().st_mode & 0o111, f"{script} must be executable"


def test_feast_repo_exists_for_the_images_and_mounts(
    services: dict[str, dict[str, Any]],
) -> None:
    # Referenced by both images and mounted into Airflow; checked on its own so that its
    # absence reads as one clear skip while the Feast repo is being written.
    where = _referenced_paths(services).get(FEAST_REPO)
    assert where, "feature_repo/ is no longer referenced; drop this test"
    if not FEAST_REPO.exists():
        pytest.skip("feature_repo/ (the Feast repo) does not exist yet; the images need it")
    assert (FEAST_REPO / "feature_store.yaml").is_file()


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = {
        volume.split(":", 1)[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used, "no named volumes: state would be lost with the containers"
    assert used == declared, f"used {sorted(used)} but declared {sorted(declared)}"
    assert {"postgres-data", "minio-data", "redis-data"} <= declared


def test_published_ports_bind_to_a_configurable_address(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("${HOST_BIND_ADDRESS:-127.0.0.1}:"), (name, port)


# --------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("dockerfile", [API_DOCKERFILE, AIRFLOW_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfiles_are_multi_stage(dockerfile: Path) -> None:
    stages = _from_images(dockerfile)
    named = [stage for _, stage in stages if stage]
    assert len(stages) >= 2 and len(named) >= 1, f"{dockerfile.name}: {stages}"
    copies_from = [
        rest
        for keyword, rest in _dockerfile_instructions(dockerfile)
        if keyword == "COPY" and "--from=" in rest
    ]
    assert copies_from, f"{dockerfile.name} copies nothing from its build stage"


@pytest.mark.parametrize("dockerfile", [API_DOCKERFILE, AIRFLOW_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfiles_bake_in_no_secret(dockerfile: Path) -> None:
    for keyword, rest in _dockerfile_instructions(dockerfile):
        if keyword not in {"ENV", "ARG"}:
            continue
        for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S*)", rest):
            if _SECRET_NAME.search(name):
                assert value.strip('"') == "", f"{dockerfile.name}: {keyword} {name}={value}"
        if keyword == "ENV" and "=" not in rest:
            name = rest.split()[0]
            assert not _SECRET_NAME.search(name), f"{dockerfile.name}: ENV {rest}"


def test_api_image_serves_as_non_root_with_a_healthcheck() -> None:
    instructions = _dockerfile_instructions(API_DOCKERFILE)
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert users, "the API image runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"the API image runs as {user}"
    keywords = dict(final_stage)
    assert "/healthz" in keywords["HEALTHCHECK"]
    assert keywords["EXPOSE"] == "8080"
    assert keywords["CMD"].startswith('["inference-pipeline", "serve"')
    assert '"0.0.0.0"' in keywords["CMD"] and '"8080"' in keywords["CMD"]
    assert '"--proxy-headers"' in keywords["CMD"]
    builder = "\n".join(rest for _, rest in instructions)
    assert "requirements/lock.txt" in builder and "--no-deps" in builder


def test_airflow_image_has_spark_jars_java_and_the_locked_project() -> None:
    instructions = _dockerfile_instructions(AIRFLOW_DOCKERFILE)
    stages = _from_images(AIRFLOW_DOCKERFILE)
    assert stages[-1][0] == "apache/airflow:3.3.2-python3.11"
    assert stages[0][0].startswith("maven:")
    text = "\n".join(f"{k} {r}" for k, r in instructions)
    assert "COPY scripts/spark-jars.pom.xml" in text
    assert "dependency:copy-dependencies" in text and "-DincludeScope=runtime" in text
    assert re.search(r"COPY --from=spark-jars \S+ /opt/spark-jars/", text)
    assert re.search(r"ENV .*SPARK_JARS_DIR=/opt/spark-jars", text)
    assert re.search(r"jre-headless", text), "no JRE for Spark"
    assert (
        "pip install --no-cache-dir --require-hashes --requirement /opt/fraud/requirements/lock.txt"
    ) in text
    assert "pip install --no-cache-dir --no-deps /opt/fraud" in text
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users[-1] == "airflow", "Airflow must not run as root"


def test_dockerignore_keeps_local_state_out_but_not_what_the_images_copy() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".venv", ".local", ".git", ".env", "**/__pycache__", ".pytest_cache"):
        assert required in patterns, f".dockerignore lacks {required}"
    excluded = [p for p in patterns if not p.startswith("!")]
    for dockerfile in (API_DOCKERFILE, AIRFLOW_DOCKERFILE):
        for source in _copy_sources(dockerfile):
            for pattern in excluded:
                assert not fnmatch.fnmatch(source.rstrip("/"), pattern), (
                    f"{dockerfile.name} copies {source}, which .dockerignore drops ({pattern})"
                )


# --------------------------------------------------------------------------- docker compose


def _compose_plugin_available() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    result = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize("profile", [None, "spark"], ids=["default", "spark-profile"])
def test_docker_compose_config_validates(profile: str | None) -> None:
    if not _compose_plugin_available():
        pytest.skip("the docker compose plugin is not installed")
    command = ["docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE)]
    if profile:
        command += ["--profile", profile]
    result = subprocess.run(
        [*command, "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
