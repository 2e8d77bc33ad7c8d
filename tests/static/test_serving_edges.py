"""Static checks of the scoring API's edges in Terraform and compose: liveness and
readiness are different checks, the WAF does not block what the API accepts, and its rate
rule follows from the throughput target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.static

REPO_ROOT = Path(__file__).resolve().parents[2]
API_MODULE = (REPO_ROOT / "terraform/modules/api_service/main.tf").read_text()
ROOT_VARIABLES = (REPO_ROOT / "terraform/variables.tf").read_text()


def test_the_load_balancer_checks_readiness_and_the_containers_liveness() -> None:
    health_check = re.search(r"health_check \{(.*?)\}", API_MODULE, re.S).group(1)
    assert re.search(r'path\s*=\s*"/readyz"', health_check)
    container = re.search(r"health_check_command\s*=\s*\[(.*)\]", API_MODULE).group(1)
    assert "/healthz" in container and "/readyz" not in container
    compose = yaml.safe_load((REPO_ROOT / "docker/docker-compose.yml").read_text())
    assert "/healthz" in " ".join(compose["services"]["scoring-api"]["healthcheck"]["test"])
    assert "/healthz" in (REPO_ROOT / "docker/api.Dockerfile").read_text()


def test_the_waf_does_not_block_batches_the_api_accepts() -> None:
    from inference_pipeline.settings import TRANSACTION_MAX_BYTES, ApiSettings

    common = re.search(
        r'name\s*=\s*"AWSManagedRulesCommonRuleSet"(.*?)visibility_config', API_MODULE, re.S
    ).group(1)
    override = re.search(
        r'rule_action_override \{\s*name\s*=\s*"SizeRestrictions_BODY"'
        r"\s*action_to_use \{\s*count \{\}",
        common,
    )
    assert override, "the 8 KB body rule must count, not block, batches"
    # The same body cap in both places: 1 KiB per transaction of the largest batch + 1 KiB.
    formula = re.search(r"body_limit_bytes\s*=\s*var\.batch_max_txns \* (\d+) \+ (\d+)", API_MODULE)
    assert formula and int(formula.group(1)) == TRANSACTION_MAX_BYTES
    api = ApiSettings(api_key="k")
    assert api.body_limit == api.batch_max_transactions * int(formula.group(1)) + int(
        formula.group(2)
    )


def test_the_rate_rule_is_derived_from_the_throughput_target() -> None:
    assert re.search(r"limit\s*=\s*local\.rate_limit_per_5min", API_MODULE)
    derived = re.search(
        r"rate_limit_per_5min\s*=\s*ceil\(var\.target_rps \* 300 \* ([\d.]+)\)", API_MODULE
    )
    assert derived and float(derived.group(1)) >= 1.0
    target = re.search(r'variable "api_target_rps" \{.*?default\s*=\s*(\d+)', ROOT_VARIABLES, re.S)
    assert target
    # One client may send the whole target rate for the window: above, not below, it.
    assert int(target.group(1)) * 300 * float(derived.group(1)) >= int(target.group(1)) * 300
