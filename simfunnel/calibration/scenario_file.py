"""A calibrated scenario as commented YAML: only the fields that were set, each with its evidence.

:func:`scenario_yaml` writes what :func:`simfunnel.calibration.scenario.build_scenario`
built, a comment on each calibrated field (estimate, interval, rows behind it, method), a
header that lists the fields that stay domain defaults, and the ``provenance:`` block.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import yaml

from simfunnel.parameters import Scenario


def scenario_yaml(
    scenario: Scenario,
    comments: dict[str, str],
    defaults: list[str],
    header: list[str] | None = None,
    also: list[str] | None = None,
    skeleton: Scenario | None = None,
) -> str:
    """The scenario as YAML: only the fields that were set, each calibrated one commented.

    ``also`` names further dotted paths to write (``sources.web.quality``), for fields
    set after the scenario was built; ``skeleton`` (the scenario as first built) says
    which fields were set, when ``scenario`` has since been rebuilt whole. The text reads
    back (``simfunnel validate``) to the same scenario.
    """
    data = written_fields(scenario, also, skeleton)
    lines = [f"# {line}" for line in (header or [])]
    lines.append("# Fields calibrated from the data carry a comment: estimate, 95% interval,")
    lines.append("# rows behind it and method. These stay domain defaults:")
    lines += [f"#   - {d}" for d in defaults]
    lines.append("# (docs/assumptions.md, shipped with simfunnel, gives each default's figure")
    lines.append("# and source; the bundled scenarios cite it by section.)")
    _emit(data, "", 0, comments, lines)
    if scenario.provenance:
        lines.append("# Where each value came from (simfunnel explain reads it): data, fit or")
        lines.append("# default; a field you change or add counts as yours once its line is gone.")
        lines.append("provenance:")
        for path, entry in scenario.provenance.items():
            flow = entry.model_dump(mode="json", exclude_none=True)
            text = yaml.safe_dump(flow, default_flow_style=True, sort_keys=False, width=10_000)
            lines.append(f"  {path}: {text.strip()}")
    return "\n".join(lines) + "\n"


def written_fields(
    scenario: Scenario, also: list[str] | None = None, skeleton: Scenario | None = None
) -> dict[str, Any]:
    """The fields :func:`scenario_yaml` writes, as a plain dict (no provenance block)."""
    data = (skeleton or scenario).model_dump(
        mode="python", exclude_unset=True, exclude={"provenance"}
    )
    if also:
        full = scenario.model_dump(mode="python", exclude={"provenance"})
        for path in also:
            _copy_path(full, data, path.split("."))
    return data


def _copy_path(full: Any, data: Any, parts: list[str]) -> None:
    """Copy the value at ``parts`` (sources addressed by name) from ``full`` into ``data``."""
    head, rest = parts[0], parts[1:]
    if isinstance(full, list | tuple):
        src = next((x for x in full if x.get("name") == head), None)
        dst = next((x for x in data if x.get("name") == head), None)
        if src is not None and dst is not None and rest:
            _copy_path(src, dst, rest)
        return
    if head not in full:
        return
    if not rest:
        data[head] = full[head]
        return
    data.setdefault(head, {} if isinstance(full[head], dict) else [])
    _copy_path(full[head], data[head], rest)


def _emit(node: Any, path: str, indent: int, comments: dict[str, str], out: list[str]) -> None:
    pad = " " * indent
    for key, value in node.items():
        here = f"{path}.{key}" if path else str(key)
        note = f"  # {comments[here]}" if here in comments else ""
        if isinstance(value, dict):
            out.append(f"{pad}{key}:{note}")
            _emit(value, here, indent + 2, comments, out)
        elif isinstance(value, list | tuple) and value and isinstance(value[0], dict):
            out.append(f"{pad}{key}:{note}")
            for item in value:
                label = item.get("name", "")
                item_path = f"{here}.{label}" if key == "sources" else here
                lines: list[str] = []
                _emit(item, item_path, indent + 4, comments, lines)
                lines[0] = f"{pad}  - " + lines[0].lstrip()
                out.extend(lines)
        elif isinstance(value, list | tuple):
            out.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]{note}")
        else:
            out.append(f"{pad}{key}: {_scalar(value)}{note}")


def _scalar(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()
