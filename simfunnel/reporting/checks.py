"""Report parameters that name something, checked before a kernel starts.

A parameter naming a scenario, a spec, a mapping, a KPI or a backend is checked
here, so that a mistyped name is refused in one line (``parameter scenario: ...``)
before any cell runs, rather than as a failing cell after the kernel's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simfunnel.errors import ReportError, SimfunnelError


def _scenario(name: str, value: Any, overrides: dict[str, Any] | None = None) -> None:
    from simfunnel.parameters import load_scenario

    if not isinstance(value, str) or not value:
        raise ReportError(f"parameter {name}: expected a scenario name or file, got {value!r}")
    try:
        load_scenario(value, overrides or None)
    except SimfunnelError as exc:
        text = _first_line(exc).removeprefix("scenario: ")
        raise ReportError(f"parameter {name}: {text}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _kpis(name: str, value: Any, known: list[str], where: str) -> None:
    if value not in known:
        raise ReportError(f"parameter {name}: {value!r} is not among {where} ({', '.join(known)})")


def _constraints(value: Any, known: list[str], where: str) -> None:
    from simfunnel.experiments.analysis import constraint_list

    try:
        rules = constraint_list(value)
    except SimfunnelError as exc:
        raise ReportError(f"parameter constraints: {_first_line(exc)}") from None
    for kpi, _, _ in rules:
        _kpis("constraints", kpi, known, where)


def _sweep(params: dict[str, Any]) -> None:
    from simfunnel.experiments.spec import load_spec

    source = params.get("spec_path") or params.get("spec")
    name = "spec_path" if params.get("spec_path") else "spec"
    if source is None:
        return
    try:
        spec = load_spec(source)
    except SimfunnelError as exc:
        raise ReportError(f"parameter {name}: {_first_line(exc)}") from None
    known = list(spec.kpis)
    for key in ("objective", "heatmap_kpi"):
        if key in params:
            _kpis(key, params[key], known, "the sweep's KPIs")
    if "constraints" in params:
        _constraints(params["constraints"], known, "the sweep's KPIs")


def _budget_mix(params: dict[str, Any]) -> None:
    from simfunnel.optimization.spec import load_optimize_spec

    source = params.get("spec") or params.get("example")
    name = "spec" if params.get("spec") else "example"
    if source is None:
        return
    try:
        load_optimize_spec(source)
    except SimfunnelError as exc:
        raise ReportError(f"parameter {name}: {_first_line(exc)}") from None


def check_names(notebook: Path, params: dict[str, Any], declared: dict[str, Any]) -> None:
    """Refuse, in one line, a parameter naming a scenario, spec, KPI or backend wrongly.

    ``params`` are the values given (after :func:`~simfunnel.reporting.report.absolute_paths`)
    and ``declared`` the notebook's parameters, whose defaults fill in the rest.

    Raises
    ------
    ReportError
        ``parameter NAME: ...`` naming the value and what it should be.
    """
    from simfunnel.experiments.backends import BACKENDS

    full = {k: v["default"] for k, v in declared.items() if "default" in v}
    full = {k: _literal(v) for k, v in full.items()}
    full.update(params)
    if "backend" in params and params["backend"] not in BACKENDS:
        raise ReportError(
            f"parameter backend: must be one of {', '.join(BACKENDS)}, got {params['backend']!r}"
        )
    overrides = full.get("overrides") if isinstance(full.get("overrides"), dict) else None
    if notebook.stem == "calibration":
        if params.get("scenario"):
            _scenario("scenario", params["scenario"])
    elif "scenario" in params or ("overrides" in params and isinstance(full.get("scenario"), str)):
        _scenario("scenario" if "scenario" in params else "overrides", full["scenario"], overrides)
    if "scenarios" in params or "baseline" in params or "overrides" in params:
        names = full.get("scenarios")
        if isinstance(names, list):
            for item in names:
                _scenario("scenarios", item, overrides)
            baseline = full.get("baseline")
            if baseline and baseline not in names:
                shown = ", ".join(str(n) for n in names)
                raise ReportError(
                    f"parameter baseline: {baseline!r} is not among the scenarios ({shown})"
                )
    if params.get("mapping"):
        from simfunnel.calibration.read.mapping import PRESETS

        value = params["mapping"]
        if value not in PRESETS and not Path(str(value)).expanduser().is_file():
            raise ReportError(
                f"parameter mapping: {value!r} is neither a preset ({', '.join(PRESETS)}) "
                "nor a file"
            )
    if notebook.stem == "parameter_sweep" and set(params) & {
        "spec",
        "spec_path",
        "objective",
        "heatmap_kpi",
        "constraints",
    }:
        _sweep(full)
    if notebook.stem == "budget_mix" and set(params) & {"spec", "example"}:
        _budget_mix(full)


def _literal(text: Any) -> Any:
    """A notebook default as papermill reports it (source text) made a value."""
    import ast

    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
