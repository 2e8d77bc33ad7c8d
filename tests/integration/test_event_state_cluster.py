"""The event state on a real Redis Cluster: three ``redis-server`` processes in cluster mode.

On a cluster a script may only touch keys of one hash slot. Each of the event state's
scripts touches one entity's keys, which share a hash tag, so the card's and the merchant's
updates run as separate per-key commands; this checks that they give, key for key, the
replies a single Redis gives, with the entities spread over the nodes.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import RedisService, free_port
from fraud_platform.event_state import card_args, card_keys, merchant_args, merchant_keys, scripts
from tests.integration.test_event_state import PASSWORD, edge_events, execute

pytestmark = pytest.mark.integration

PORTS = (7150, 7151, 7152)
"""Cluster nodes need their port + 10,000 free too (the cluster bus): fixed low ports."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[RedisCluster]:
    binary = shutil.which("redis-server") or StackConfig().redis_bin
    cli = shutil.which("redis-cli") or str(binary).replace("redis-server", "redis-cli")
    folder = tmp_path_factory.mktemp("cluster")
    processes = []
    try:
        for port in PORTS:
            node = folder / str(port)
            node.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node / "nodes.conf"),
                        "--dir",
                        str(node),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in PORTS:
            _wait(lambda port=port: redis.Redis(port=port).ping())
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in PORTS),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait(
            lambda: all(redis.Redis(port=p).cluster("info")["cluster_state"] == "ok" for p in PORTS)
        )
        client = RedisCluster(host="127.0.0.1", port=PORTS[0])
        yield client
        client.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def _wait(check, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Redis Cluster did not come up")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Iterator[RedisService]:
    service = RedisService(
        name="redis-single",
        port=free_port(),
        config=StackConfig(dir=tmp_path_factory.mktemp("single")),
        process_name="redis-server",
        password=PASSWORD,
    )
    service.start()
    yield service
    service.stop()


def test_per_key_scripts_give_the_single_node_replies_on_a_cluster(cluster, single) -> None:
    from fraud_platform.event_state import card_command, merchant_command

    for script in scripts():
        cluster.script_load(script.source)  # on every primary
    events = edge_events()
    expected = execute(
        single,
        [
            c
            for e in events
            for c in (
                card_command("ra", e),
                merchant_command("ra", e.merchant_id, e.at_us, e.transaction_id),
            )
        ],
    )
    replies = []
    for e in events:
        replies.append(cluster.execute_command(*card_args("ra", e)))
        replies.append(
            cluster.execute_command(*merchant_args("ra", e.merchant_id, e.at_us, e.transaction_id))
        )
    assert replies == expected
    # The entities live on more than one node.
    slots = {cluster.keyslot(card_keys(e.card_id)[0]) for e in events}
    slots |= {cluster.keyslot(merchant_keys(e.merchant_id)[0]) for e in events}
    nodes = {cluster.get_node_from_key(card_keys(e.card_id)[0]).port for e in events}
    assert len(slots) > 3 and len(nodes) >= 2


def test_a_script_over_two_entities_would_not_run_on_a_cluster(cluster) -> None:
    # Why the card's and the merchant's updates are separate: one script over both
    # entities' keys crosses slots, which a cluster refuses.
    card, merchant = card_keys("c-x")[0], merchant_keys("m-x")[0]
    assert cluster.keyslot(card) != cluster.keyslot(merchant)
    node = cluster.get_node_from_key(card)
    with (
        redis.Redis(host=node.host, port=node.port) as direct,
        pytest.raises(redis.ResponseError, match="same slot"),
    ):
        direct.eval("return 1", 2, card, merchant)
