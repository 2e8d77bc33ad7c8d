"""The micro-batcher: concurrent single requests share one Redis round trip and model call.

Requests that arrive while a batch is in Redis wait for the next one, so concurrent
requests share a round trip and a model call instead of queueing behind each other's. A
lone request is scored at once (no batching delay).

Overload is shed, not queued: the queue holds at most ``max_pending`` requests (a request
beyond that is refused at once) and a request that waited longer than ``max_wait``
seconds is refused when its batch forms instead of being scored late. Both refusals are
:class:`OverloadedError` (a 503 with ``Retry-After``), so under more load than the
process can score, accepted requests keep their latency and the rest fail fast.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class OverloadedError(RuntimeError):
    """The request was shed: the queue is full, or it waited past its deadline."""


class MicroBatcher:
    """Gathers concurrent single requests into shared batches, within a bounded queue.

    ``submit`` queues an item and, if no batch is being scored, starts one at once. While a
    batch waits on Redis, new requests accumulate and become the next batch, so the batch
    size adapts to the load without a timer: 1 when idle, the concurrency under load.
    """

    def __init__(
        self,
        handle: Callable[[list[Any]], Awaitable[list[Any]]],
        max_batch: int,
        observe_size: Callable[[int], None] | None = None,
        max_pending: int = 1024,
        max_wait: float = 0.05,
    ) -> None:
        self._handle = handle
        self._max_batch = max_batch
        self._observe_size = observe_size
        self._max_pending = max_pending
        self._max_wait = max_wait
        self._pending: deque[tuple[Any, asyncio.Future, float]] = deque()
        self._draining = False

    async def submit(self, item: Any) -> Any:
        """The item's result, once its batch is scored.

        Raises:
            OverloadedError: the queue is full, or the item waited longer than ``max_wait``.
        """
        if not self._draining:
            return await self._score_alone(item)
        if len(self._pending) >= self._max_pending:
            raise OverloadedError(f"overloaded: {len(self._pending)} requests queued")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future, time.monotonic() + self._max_wait))
        return await future

    async def _score_alone(self, item: Any) -> Any:
        """Nothing is being scored: score the item in the caller's task, without the hop
        through the queue; requests that arrive meanwhile queue for the next batch."""
        self._draining = True
        try:
            if self._observe_size:
                self._observe_size(1)
            [result] = await self._handle([item])
            return result
        finally:
            if self._pending:
                asyncio.get_running_loop().create_task(self._drain())
            else:
                self._draining = False

    def _next_batch(self) -> list[tuple[Any, asyncio.Future, float]]:
        """Up to ``max_batch`` queued items still within their deadline; the late ones are
        refused here, before any work is spent on them."""
        now = time.monotonic()
        batch: list[tuple[Any, asyncio.Future, float]] = []
        while self._pending and len(batch) < self._max_batch:
            entry = self._pending.popleft()
            if entry[2] >= now:
                batch.append(entry)
            elif not entry[1].done():
                entry[1].set_exception(
                    OverloadedError(
                        f"overloaded: queued longer than {self._max_wait * 1000:.0f} ms"
                    )
                )
        return batch

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._next_batch()
                if not batch:
                    continue
                if self._observe_size:
                    self._observe_size(len(batch))
                try:
                    results = await self._handle([item for item, _, _ in batch])
                except Exception as exc:  # every waiter gets the batch's error
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future, _), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False
