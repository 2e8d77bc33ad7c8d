"""``inference-pipeline``: serve the scoring API, or score a day in batch."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Online and batch fraud scoring with the champion model.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Processes (one per core at most).")] = 1,
) -> None:
    """Run the scoring API (uvicorn with uvloop and httptools, no access log)."""
    import uvicorn

    uvicorn.run("inference_pipeline.api.app:create_app", factory=True, host=host, port=port,
                workers=workers, loop="uvloop", http="httptools", access_log=False,
                log_level="info")


@app.command()
def batch(
    day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"],
                                          help="The day whose transactions to score.")],
) -> None:
    """Score a day's transactions from the offline store into predictions/ on S3."""
    from inference_pipeline.batch import score_day

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    typer.echo(json.dumps(score_day(day.date()), indent=2, default=str))


if __name__ == "__main__":
    app()
