"""What Grafana does with our JSON, done here because no Grafana server can run in the tests.

- `expand`: template variables and macros, as Grafana's InfluxDB datasource (InfluxQL, raw
  query mode) interpolates them: `$timeFilter` -> `time >= <from>ms and time <= <to>ms`,
  `$__interval` -> a duration, `$__interval_ms` -> its milliseconds, and a variable used in a
  regex -> its value regex-escaped, or `(a|b)` for several, or the variable's allValue for All.
- `evaluate`: an alert rule's data chain (InfluxQL queries, then server-side expressions:
  reduce with dropNN, math with label matching, threshold) for a time range ending at `now`,
  returning the label sets that fire.

Only the features our generated JSON uses are implemented; anything else raises.
"""

from __future__ import annotations

import math as pymath
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Labels = tuple[tuple[str, str], ...]
Series = dict[Labels, list[float]]


def interval_text(ms: int) -> str:
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def expand(query: str, *, from_ms: int, to_ms: int, interval_ms: int,
           variables: Mapping[str, Sequence[str] | None]) -> str:
    """`variables`: name -> selected values, or None for All (then the allValue `.*` is used)."""
    text = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    text = text.replace("$__interval_ms", str(interval_ms)).replace("$__interval", interval_text(interval_ms))

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise KeyError(f"query uses ${name}, which is not a dashboard variable: {query}")
        chosen = variables[name]
        if chosen is None:
            return ".*"
        escaped = [re.sub(r"([\\/.^$*+?()\[\]{}|-])", r"\\\1", v) for v in chosen]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    text = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", value, text)
    if re.search(r"\$[A-Za-z_{]", text):
        raise ValueError(f"unexpanded macro left in {text}")
    return text


def series_of(body: dict[str, Any]) -> Series:
    """InfluxDB /query JSON -> one series per (measurement, tags, column), as Grafana splits it."""
    out: Series = {}
    for result in body.get("results", []):
        if "error" in result:
            raise AssertionError(result["error"])
        for s in result.get("series", []):
            columns = s["columns"]
            for i, column in enumerate(columns[1:], start=1):
                labels = tuple(sorted({**s.get("tags", {}), "__col": column}.items()))
                values = [row[i] for row in s["values"]]
                # Booleans are values too (Grafana shows them as true/false); strings and nulls are not numbers.
                out[labels] = [float(v) for v in values if isinstance(v, (int, float))]
    return out


def _strip(labels: Labels) -> Labels:
    return tuple((k, v) for k, v in labels if k != "__col")


def _reduce(values: list[float], reducer: str) -> float | None:
    values = [v for v in values if not pymath.isnan(v)]  # dropNN
    if not values:
        return None
    functions: dict[str, Callable[[list[float]], float]] = {
        "last": lambda v: v[-1], "min": min, "max": max, "sum": sum,
        "mean": lambda v: sum(v) / len(v), "count": lambda v: float(len(v))}
    return functions[reducer](values)


def _math(expression: str, numbers: dict[str, dict[Labels, float]]) -> dict[Labels, float]:
    """Grafana math over reduced numbers: variables joined on equal label sets."""
    names = re.findall(r"\$([A-Za-z][A-Za-z0-9]*)", expression)
    first = numbers[names[0]]
    out: dict[Labels, float] = {}
    py = expression.replace("&&", " and ").replace("||", " or ")
    for labels in first:
        if not all(labels in numbers[n] for n in names):
            continue
        env = {n: numbers[n][labels] for n in names}
        result = eval(re.sub(r"\$([A-Za-z][A-Za-z0-9]*)", r"\1", py), {"__builtins__": {}}, env)
        out[labels] = float(result)
    return out


def evaluate(rule: dict[str, Any], run_query: Callable[[str], dict[str, Any]], now_ms: int,
             interval_ms: int = 1000, raw: dict[str, Series] | None = None) -> dict[Labels, float]:
    """The label sets (and values) for which the rule's condition is non-zero at `now_ms`;
    `raw`, when given, receives each query's series."""
    numbers: dict[str, dict[Labels, float]] = {}
    raw = {} if raw is None else raw
    for step in rule["data"]:
        ref, model = step["refId"], step["model"]
        if step["datasourceUid"] != "__expr__":
            span = step["relativeTimeRange"]
            text = expand(model["query"], from_ms=now_ms - span["from"] * 1000, to_ms=now_ms - span["to"] * 1000,
                          interval_ms=interval_ms, variables={})
            raw[ref] = series_of(run_query(text))
        elif model["type"] == "reduce":
            numbers[ref] = {}
            for labels, values in raw[model["expression"]].items():
                reduced = _reduce(values, model["reducer"])
                if reduced is not None:
                    numbers[ref][_strip(labels)] = reduced
        elif model["type"] == "math":
            numbers[ref] = _math(model["expression"], numbers)
        elif model["type"] == "threshold":
            (condition,) = model["conditions"]
            op, (limit,) = condition["evaluator"]["type"], condition["evaluator"]["params"]
            numbers[ref] = {k: float(v > limit if op == "gt" else v < limit)
                            for k, v in numbers[model["expression"]].items()}
        else:
            raise NotImplementedError(model["type"])
    return {labels: v for labels, v in numbers[rule["condition"]].items() if v}
