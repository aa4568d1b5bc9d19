"""The monitoring objects as Prometheus and Flagger see them: the PrometheusRule's groups as a
rule file, and a MetricTemplate's query with Flagger's template variables filled in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.chart.support import Rendered

# Flagger renders a MetricTemplate's query as a Go template whose variables are `name`,
# `namespace`, `target`, `service`, `ingress`, `interval` (and `variables.<key>`):
# https://docs.flagger.app/usage/metrics#custom-metrics. The chart uses only plain ones.
_FLAGGER_VARIABLE = re.compile(r"\{\{\s*(name|namespace|target|service|ingress|interval)\s*\}\}")


def rule_groups(rendered: Rendered) -> list[dict[str, Any]]:
    (rule,) = rendered.all("PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def write_rule_file(
    rendered: Rendered, path: Path, *, keep_annotations: bool = True
) -> dict[str, dict[str, Any]]:
    """The rendered groups as a Prometheus rule file (what the operator hands Prometheus);
    returns the rules by alert name. Without annotations for `promtool test rules`, whose
    expectations would otherwise repeat every templated text."""
    groups = rule_groups(rendered)
    if not keep_annotations:
        groups = [
            {**group, "rules": [_without_annotations(r) for r in group["rules"]]}
            for group in groups
        ]
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _without_annotations(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key != "annotations"}


def metric_template_queries(rendered: Rendered) -> dict[str, str]:
    """MetricTemplate name -> query, as rendered (Flagger's variables still in it)."""
    return {m["metadata"]["name"]: m["spec"]["query"] for m in rendered.all("MetricTemplate")}


def flagger_query(query: str, **variables: str) -> str:
    """The query Flagger sends to Prometheus: each `{{ variable }}` replaced; a variable the
    caller did not give is an error, as Flagger's template execution would be."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise KeyError(f"the query uses {{{{ {name} }}}}, which was not given")
        return variables[name]

    rendered = _FLAGGER_VARIABLE.sub(substitute, query)
    if "{{" in rendered:
        raise ValueError(f"unrendered template left in the query: {rendered}")
    return rendered
