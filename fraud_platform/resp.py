"""RESP, Redis's wire format, for the two places that send pre-encoded pipelines: the bulk
materialization writer and the scoring API's feature reads (see their modules for why
they bypass redis-py's per-command encoding)."""

from __future__ import annotations


def encode(*args: str | bytes) -> bytes:
    """One command as RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)
