"""The rendered PrometheusRule, checked and unit-tested by the real promtool: for every alert a
series that makes it fire and one that keeps it quiet
(https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/). Each alert
also names a runbook that exists."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.chart.prometheus_rules import write_rule_file
from tests.chart.support import FULLNAME, NAMESPACE, Rendered, render_env
from tools.kit.programs import REPO_ROOT, require_program

pytestmark = pytest.mark.helm

POD = f"{FULLNAME}-7d9f8c6b5-x2k4q"
ON_POD = f'namespace="{NAMESPACE}", pod="{POD}"'
RUNS = "agent_service_graph_executions_total"
BUCKETS = "agent_service_run_duration_seconds_bucket"
CRONJOB = f'cronjob="{FULLNAME}-backup", namespace="{NAMESPACE}"'


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_program("promtool"), *args], capture_output=True, text=True, timeout=60
    )


def _case(
    alert: str,
    series: list[tuple[str, str]],
    eval_time: str,
    fires: list[dict[str, str]],
    interval: str = "1m",
) -> dict[str, Any]:
    return {
        "interval": interval,
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": [
            {
                "eval_time": eval_time,
                "alertname": alert,
                "exp_alerts": [{"exp_labels": labels} for labels in fires],
            }
        ],
    }


def _histogram(graph: str, counts: dict[str, str]) -> list[tuple[str, str]]:
    return [(f'{BUCKETS}{{{ON_POD}, graph="{graph}", le="{le}"}}', v) for le, v in counts.items()]


def unit_tests() -> list[dict[str, Any]]:
    """(firing, quiet) for each alert of the canary render (thresholds: canary-values.yaml and the
    chart defaults: error ratio 1 %, P99 30 s, 2 restarts, 4 readiness changes, pool 90 %,
    backups every 13 h)."""
    pod = {"namespace": NAMESPACE, "pod": POD}
    warning = {"severity": "warning"}
    tests: list[dict[str, Any]] = []

    def both(alert: str, firing: dict[str, Any], quiet: dict[str, Any]) -> None:
        tests.extend([firing, quiet])
        assert firing["alert_rule_test"][0]["exp_alerts"], alert
        assert quiet["alert_rule_test"][0]["exp_alerts"] == [], alert

    errors = "AgentServiceHighErrorRate"
    ok = (f'{RUNS}{{{ON_POD}, graph="main_agent", status="success"}}', "0+60x20")
    both(
        errors,
        _case(
            errors,
            [ok, (f'{RUNS}{{{ON_POD}, graph="main_agent", status="error"}}', "0+6x20")],
            "15m",
            [warning],
        ),
        # 0.5 % failing: below the 1 % threshold.
        _case(
            errors,
            [ok, (f'{RUNS}{{{ON_POD}, graph="main_agent", status="timeout"}}', "0+0.3x20")],
            "15m",
            [],
        ),
    )
    slow = "AgentServiceSlowRuns"
    both(
        slow,
        _case(
            slow,
            _histogram(
                "main_agent", {"10": "0x30", "30": "0x30", "60": "0+10x30", "+Inf": "0+10x30"}
            ),
            "20m",
            [{**warning, "graph": "main_agent"}],
        ),
        _case(
            slow,
            _histogram(
                "main_agent", {"10": "0+10x30", "30": "0+10x30", "60": "0+10x30", "+Inf": "0+10x30"}
            ),
            "20m",
            [],
        ),
    )
    restarts = "AgentServicePodRestarting"
    restart_series = f'kube_pod_container_status_restarts_total{{{ON_POD}, container="agent"}}'
    both(
        restarts,
        _case(
            restarts,
            [(restart_series, "0+1x20")],
            "16m",
            [{**warning, **pod, "container": "agent"}],
        ),
        _case(restarts, [(restart_series, "3x20")], "16m", []),
    )
    flapping = "AgentServiceReadinessFlapping"
    ready = f'kube_pod_status_ready{{{ON_POD}, condition="true"}}'
    both(
        flapping,
        _case(
            flapping,
            [(ready, "1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0")],
            "15m",
            [{**warning, **pod, "condition": "true"}],
        ),
        # One restart's worth of changes (unready while starting) is not flapping.
        _case(flapping, [(ready, "1 1 0 0 1 1 1 1 1 1 1 1 1 1 1 1")], "15m", []),
    )
    pool = "AgentServiceDatabasePoolSaturated"

    def pool_series(size: str, available: str, maximum: str, waiting: str) -> list[tuple[str, str]]:
        return [
            (f"agent_service_db_pool_size{{{ON_POD}}}", size),
            (f"agent_service_db_pool_available{{{ON_POD}}}", available),
            (f"agent_service_db_pool_max{{{ON_POD}}}", maximum),
            (f"agent_service_db_pool_requests_waiting{{{ON_POD}}}", waiting),
        ]

    both(
        pool,
        _case(pool, pool_series("20x20", "1x20", "20x20", "0x20"), "15m", [{**warning, **pod}]),
        _case(pool, pool_series("8x20", "5x20", "20x20", "0x20"), "15m", []),
    )
    tests.append(  # Requests queueing for a connection fire it too, whatever the ratio.
        _case(pool, pool_series("8x20", "0x20", "20x20", "3x20"), "15m", [{**warning, **pod}])
    )
    budget = "AgentServiceModelBudgetExhausted"
    limited = (
        f"agent_service_guardrail_events_total{{{ON_POD}, "
        'guardrail="user_model_call_limit", action="limited"}'
    )
    both(
        budget,
        _case(budget, [(limited, "0+1x20")], "10m", [{"severity": "info"}]),
        _case(budget, [(limited, "5x20")], "10m", []),
    )
    backup = "AgentServiceBackupTooOld"
    created = (f"kube_cronjob_created{{{CRONJOB}}}", "0x20")
    success = f"kube_cronjob_status_last_successful_time{{{CRONJOB}}}"
    critical = {"severity": "critical"}
    both(
        backup,
        # Last success at t=0, evaluated 14 h later: older than 13 h.
        _case(backup, [created, (success, "0x20")], "14h", [critical], interval="1h"),
        # A success every hour (the gauge holds the success's Unix time).
        _case(backup, [created, (success, "0+3600x20")], "14h", [], interval="1h"),
    )
    tests.append(  # Never succeeded since the CronJob was created 14 h ago.
        _case(backup, [created], "14h", [critical], interval="1h")
    )
    failed = "AgentServiceBackupFailed"
    job = f"{FULLNAME}-backup-29400000"
    failed_series = f'kube_job_status_failed{{namespace="{NAMESPACE}", job_name="{job}"}}'
    both(
        failed,
        _case(failed, [(failed_series, "0 0 1 1 1")], "4m", [critical]),
        _case(failed, [(failed_series, "0x5")], "4m", []),
    )
    canary = "AgentServiceCanaryFailed"
    status = f'flagger_canary_status{{name="{FULLNAME}", exported_namespace="{NAMESPACE}"}}'
    both(
        canary,
        _case(canary, [(status, "2x5")], "2m", [critical]),
        _case(canary, [(status, "1x5")], "2m", []),
    )
    return tests


def test_promtool_checks_the_rendered_rules(
    canary: Rendered, autoscaled: Rendered, tmp_path: Path
) -> None:
    for name, rendered in (("canary", canary), ("autoscaled", autoscaled)):
        path = tmp_path / f"{name}-rules.yaml"
        write_rule_file(rendered, path)
        result = promtool("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a rule with bad PromQL is refused."""
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum(rate(x[5m])"}]}]}
        )
    )
    result = promtool("check", "rules", str(path))
    assert result.returncode != 0


def test_every_alert_fires_on_its_fault_and_stays_quiet_otherwise(
    canary: Rendered, tmp_path: Path
) -> None:
    rules = write_rule_file(canary, tmp_path / "rules.yaml", keep_annotations=False)
    tests = unit_tests()
    covered = {case["alert_rule_test"][0]["alertname"] for case in tests}
    assert covered == set(rules), "every rendered alert has a firing and a quiet case"
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_can_fail(canary: Rendered, tmp_path: Path) -> None:
    """A quiet case expecting the alert fails: the unit tests above are not vacuous."""
    write_rule_file(canary, tmp_path / "rules.yaml", keep_annotations=False)
    quiet = unit_tests()[1]
    quiet["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [quiet]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert promtool("test", "rules", str(tmp_path / "tests.yaml")).returncode != 0


def test_every_alert_names_a_runbook_that_exists(canary: Rendered, tmp_path: Path) -> None:
    rules = write_rule_file(canary, tmp_path / "rules.yaml")
    for alert, rule in rules.items():
        url = urlparse(rule["annotations"]["runbook_url"])
        assert url.scheme == "https", alert
        assert "/docs/runbooks/" in url.path, alert
        runbook = REPO_ROOT / "docs" / "runbooks" / Path(url.path).name
        assert runbook.is_file(), f"{alert}: {runbook} does not exist"
        assert alert in runbook.read_text(), f"{runbook.name} does not mention {alert}"


def test_the_backup_alert_follows_the_backup() -> None:
    rendered = render_env("canary", {"backup": {"enabled": False}})
    (group,) = rendered.one("PrometheusRule")["spec"]["groups"]
    assert "AgentServiceBackupTooOld" not in {rule["alert"] for rule in group["rules"]}
