"""``fraud-stack``: start, stop and inspect the local stack."""

from __future__ import annotations

import logging
import shlex
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.stack import LocalStack
from fraud_platform.errors import StackNotReadyError

app = typer.Typer(help="The local stack: real Redis and S3 servers as processes, no Docker.")
console = Console()


def _stack() -> LocalStack:
    return LocalStack(StackConfig())


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )


@app.command()
def up() -> None:
    """Start every service that is not running (idempotent) and write .local/stack.env."""
    stack = _stack()
    try:
        timings = stack.up()
    except StackNotReadyError as exc:
        console.print(f"[red]stack up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for name, seconds in timings.items():
        state = f"started in {seconds:.2f}s" if seconds else "already running"
        console.print(f"[green]{name}[/green] {state}")
    console.print(f"environment: {stack.config.env_file}")


@app.command()
def down() -> None:
    """Stop the services that 'up' started, and nothing else."""
    stopped = _stack().down()
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status() -> None:
    """Show each service's state, address, pid and memory."""
    stack = _stack()
    table = Table("service", "state", "address", "pid", "memory (MB)", "log")
    all_up = True
    optional = [stack.api, *(s for s in stack.monitoring if s not in stack.services)]
    for service in [*stack.services, *optional]:
        pid = service.pid()
        ready = pid is not None and service.is_ready()
        all_up &= ready or service in optional
        memory = service.memory_mb()
        table.add_row(
            service.name,
            "[green]up[/green]" if ready else "[red]down[/red]",
            f"127.0.0.1:{service.port}",
            str(pid or "-"),
            f"{memory:.0f}" if memory else "-",
            str(service.log_file),
        )
    console.print(table)
    raise typer.Exit(0 if all_up else 3)


@app.command()
def env() -> None:
    """Print the stack's environment as shell exports: eval "$(fraud-stack env)"."""
    for key, value in _stack().environment().items():
        print(f"export {key}={shlex.quote(value)}")
