"""The ASGI types the API's own middlewares are written against.

Declared here rather than imported from Starlette: the middlewares speak plain ASGI (a
scope, ``receive`` and ``send``), which is all they need, and Starlette's own aliases are
not part of its public API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
