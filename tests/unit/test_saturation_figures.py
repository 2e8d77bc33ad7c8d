"""The saturation benchmark's own arithmetic: the targets it streams to vegeta and the
figures it computes from vegeta's per-request results."""

from __future__ import annotations

import base64
import itertools
import json

from benchmarks.saturation import Result, retry_after, summarize, targets


def test_each_target_posts_the_body_with_a_fresh_transaction_id() -> None:
    body = {"card_id": "c1", "amount": 12.5}
    lines = list(itertools.islice(targets("http://api:8000/", "key", body), 3))
    sent = [json.loads(line) for line in lines]
    payloads = [json.loads(base64.b64decode(t["body"])) for t in sent]
    assert {t["url"] for t in sent} == {"http://api:8000/v1/score"}
    assert sent[0]["header"] == {"X-API-Key": ["key"], "Content-Type": ["application/json"]}
    assert [{k: v for k, v in p.items() if k != "transaction_id"} for p in payloads] == [body] * 3
    assert len({p["transaction_id"] for p in payloads}) == 3


def test_retry_after_is_read_from_the_encoded_header_block() -> None:
    block = base64.b64encode(b"Content-Type: application/json\r\nRetry-After: 1\r\n\r\n").decode()
    assert retry_after(block) == "1"
    assert retry_after("") is None


def test_latency_percentiles_count_only_the_accepted_requests() -> None:
    ms = 1_000_000
    results = [Result(i * 10 * ms, 200, (i + 1) * ms, "", None) for i in range(100)]
    results += [Result(1_000 * ms, 503, 900 * ms, "", "1")] * 50
    results += [Result(1_000 * ms, 0, 10_000 * ms, "timeout", None)]
    figures = summarize(results, seconds=1)
    assert figures["accepted_p50_ms"] == 50.5 and figures["accepted_p99_ms"] == 99.0
    assert figures["accepted_rps"] == 100.0 and figures["achieved_rps"] == 151.0
    assert figures["share_503"] == round(50 / 151, 3) and figures["retry_after"] == {"1": 50}
    assert figures["no_answer"] == 1 and figures["server_errors"] == 0
    assert figures["statuses"] == {"0": 1, "200": 100, "503": 50}
