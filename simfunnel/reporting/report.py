"""Reports: execute a parameterized notebook through papermill, export it to HTML.

One report is three files in its folder: the executed notebook, a self-contained HTML
page with the code hidden and every figure embedded, and a JSON file of the headline
numbers (which the notebook writes to the path given in its ``headline_json``
parameter). A batch makes one report per parameter set and an ``index.html`` that
links them and tabulates their headline numbers.

Parameters are checked against the notebook's ``parameters`` cell (names and
annotated types, read by papermill's inspection) before anything runs. The kernel
runs in the report's folder, so a relative path to an existing file is passed as an
absolute one, and an input file that is not there is refused first.
"""

from __future__ import annotations

import glob
import html
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simfunnel.errors import ReportError


def _notebook_dir() -> Path:
    """``notebooks/`` of a source checkout (or editable install), else the wheel's copy."""
    here = Path(__file__).resolve()
    checkout = here.parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        return checkout / "notebooks"
    return here.parents[1] / "notebooks"  # installed from a wheel (see setup.py)


#: The folder of the project's notebooks.
NOTEBOOK_DIR = _notebook_dir()

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


class NotebookFailed(ReportError):
    """A cell of the notebook raised; the partial notebook is kept."""

    exit_status = 1


@dataclass(frozen=True)
class Report:
    """The files of one report and its headline numbers."""

    name: str
    notebook: Path
    html: Path
    headline_json: Path
    parameters: dict[str, Any]
    headline: dict[str, Any] = field(repr=False)
    xlsx: Path | None = None


def available_notebooks() -> dict[str, Path]:
    """The project's notebooks by name."""
    if not NOTEBOOK_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb"))}


def resolve_notebook(name_or_path: str | Path) -> Path:
    """A notebook by name (``volume_vs_quality``) or by path."""
    path = Path(name_or_path)
    if path.suffix == ".ipynb":
        if not path.is_file():
            raise ReportError(f"notebook: no such file {str(path)!r}")
        return path
    notebooks = available_notebooks()
    if str(name_or_path) not in notebooks:
        known = ", ".join(notebooks) or "none found"
        raise ReportError(f"notebook: {str(name_or_path)!r} is not one of {known}")
    return notebooks[str(name_or_path)]


def _papermill() -> Any:
    """papermill, imported without pyarrow, which only its HDFS support would use.

    pyarrow (and numpy with it) costs a report command 0.3-0.5 s before its kernel
    is even needed; reports read and write local files. pyarrow stays importable.
    """
    if "papermill" not in sys.modules and "pyarrow" not in sys.modules:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]
        try:
            import papermill
        finally:
            del sys.modules["pyarrow"]
    import papermill

    return papermill


def notebook_parameters(path: str | Path) -> dict[str, dict[str, Any]]:
    """The parameters of a notebook: name -> type, default and help (papermill)."""
    pm = _papermill()
    params: dict[str, dict[str, Any]] = pm.inspect_notebook(str(path))
    return params


def check_parameters(path: Path, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Refuse unknown names and values of the wrong type, in one line.

    Returns
    -------
    dict
        The notebook's declared parameters (as :func:`notebook_parameters`).
    """
    declared = notebook_parameters(path)
    for name, value in values.items():
        if name not in declared:
            known = ", ".join(declared)
            raise ReportError(
                f"parameter {name!r}: not a parameter of {path.stem} (its parameters: {known})"
            )
        kind = str(declared[name]["inferred_type_name"]).split("[")[0].strip()
        allowed = _TYPES.get(kind)
        if allowed is None:
            continue
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if not isinstance(value, allowed) or wrong_bool:
            raise ReportError(
                f"parameter {name}: expected {kind}, got {type(value).__name__} {value!r}"
            )
    return declared


#: Suffixes of the input files a notebook parameter may name (data, mappings, specs,
#: scenarios): such a value that names no file is refused before the kernel starts.
INPUT_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".xls", ".yaml", ".yml", ".json"}
)


def absolute_paths(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each relative path to an existing file or folder made absolute.

    The kernel runs in the report's folder, so a path relative to the caller's
    directory would name nothing there. Names (a preset, a bundled scenario) pass
    unchanged. An input file that is not there is refused in one line, before
    anything is written or run; ``headline_json`` and ``*_dir`` parameters are
    outputs and pass unchecked.

    Raises
    ------
    ReportError
        A value with an input file's suffix (``.csv``, ``.yaml``...) that names no file.
    """

    def one(name: str, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        path = Path(value).expanduser()
        if path.exists():
            return value if path.is_absolute() else str(path.resolve())
        if not name.endswith("_dir") and path.suffix.lower() in INPUT_SUFFIXES:
            raise ReportError(f"parameter {name}: no such file {value!r}")
        return value

    resolved = dict(values)
    for name, value in values.items():
        if name == "headline_json":
            continue
        if isinstance(value, list):  # e.g. a list of scenario names and files
            resolved[name] = [one(name, item) for item in value]
        else:
            resolved[name] = one(name, value)
    return resolved


def check_before_kernel(path: Path, parameters: dict[str, Any]) -> None:
    """Every check of a report's parameters that needs no kernel: names, types, files.

    Unknown names, wrong types, missing input files, and values naming a scenario, a
    spec, a KPI or a backend that is not there (:func:`~simfunnel.reporting.checks.check_names`).

    Raises
    ------
    ReportError
        In one line, naming the parameter.
    """
    from simfunnel.reporting.checks import check_names

    params = _with_default_baseline(parameters, notebook_parameters(path))
    declared = check_parameters(path, params)
    check_names(path, absolute_paths(params), declared)


def _output_folder(out: str | Path) -> Path:
    """Make the report folder, or refuse in one line (a file, or no permission)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--out {folder}: is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--out {folder}: cannot create it: {exc.strerror or exc}") from None
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-")[:80] or "report"


def _kernel_config() -> Any:
    from traitlets.config import Config

    # IPC sockets in a private folder: nothing listens on the network, and the
    # kernel has no reason to warn about unencrypted TCP.
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(tempfile.mkdtemp(prefix="simfunnel-kernel-"), "k")
    return config


def page_title(nb: Any, name: str) -> str:
    """A report's page title: the notebook's first heading, and the run's name if its own.

    ``More leads, or better leads?``, or ``... (02_scenarios-quality_heavy+balanced)``
    for a report of a batch.
    """
    heading = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if match:
                heading = match.group(1).strip()
                break
    if not heading:
        return name.replace("_", " ").capitalize()
    stem = str(nb.metadata.get("simfunnel_stem", ""))
    return heading if name in ("", stem) else f"{heading} ({name})"


def _image_alt_texts(nb: Any) -> dict[str, str]:
    """Alt text of each PNG output that carries one (its metadata), by its base64 data."""
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            meta = output.get("metadata", {})
            alt = meta.get("image/png", {}).get("alt") or meta.get("alt")
            if alt:
                out[str(data["image/png"]).replace("\n", "")[:200]] = str(alt)
    return out


def _html_exporter() -> Any:
    """The HTML exporter (nbconvert's) of reports: lab template, code hidden, images inline."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    return exporter


def _warm_exporter() -> Any:
    """An HTML exporter that has already exported once, and the workbook's imports.

    The first export loads nbconvert, compiles its templates and builds its markdown
    and highlighting filters (about a second); run in a thread while the kernel
    executes the cells (the command then mostly waits on the kernel), that second
    leaves the report's critical path. The exporter keeps no state from one export
    to the next.
    """
    import nbformat
    import openpyxl  # noqa: F401  (the workbook comes next)

    exporter = _html_exporter()
    v4 = nbformat.v4
    png = (  # one white pixel
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR4"
        "2mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    )
    sample = v4.new_notebook(
        cells=[
            v4.new_markdown_cell(
                "# Title\n\n**bold**, *em*, `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |"
            ),
            v4.new_code_cell(
                "x",
                outputs=[
                    v4.new_output("stream", name="stdout", text="text\n"),
                    v4.new_output("display_data", data={"text/markdown": "*takeaway*"}),
                    v4.new_output("display_data", data={"image/png": png, "text/plain": "alt"}),
                    v4.new_output("execute_result", data={"text/html": "<table></table>"}),
                ],
            ),
        ]
    )
    exporter.from_notebook_node(sample, resources={"metadata": {"name": "warm-up"}})
    return exporter


_EXPORTER: Any = None


def _exporter_soon() -> Any:
    """A future of :func:`_warm_exporter`, started in a thread on the first call."""
    global _EXPORTER
    if _EXPORTER is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simfunnel-export")
        _EXPORTER = pool.submit(_warm_exporter)
        pool.shutdown(wait=False)
    return _EXPORTER


def export_html(notebook: Path, target: Path, title: str, exporter: Any = None) -> Path:
    """A self-contained HTML page of an executed notebook, code hidden, images embedded.

    Each figure shown through :func:`simfunnel.reporting.plots.show` keeps its alt text
    (nbconvert's template drops it and writes "No description has been provided").
    ``exporter`` is an exporter from an earlier export, to skip building one.
    """
    import nbformat
    from bs4 import BeautifulSoup

    exporter = exporter or _html_exporter()
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    # No page of ours needs MathJax or require.js: keep the page free of remote scripts.
    body = re.sub(r"<script[^>]*src=\"https?://[^\"]*\"[^>]*>\s*</script>", "", body)
    alts = _image_alt_texts(nb)
    if alts:
        soup = BeautifulSoup(body, features="html.parser")
        for img in soup.find_all("img"):
            src = str(img.get("src", ""))
            key = src.removeprefix("data:image/png;base64,")[:200]
            if src.startswith("data:image/png;base64,") and key in alts:
                img["alt"] = alts[key]
        body = str(soup)
    target.write_text(body, encoding="utf-8")
    return target


def run_report(
    notebook: str | Path,
    parameters: dict[str, Any] | None,
    out: str | Path,
    name: str | None = None,
    progress: bool | dict[str, Any] = False,
    max_runs: int | None = None,
) -> Report:
    """Execute one notebook with ``parameters`` into ``out`` and export its report.

    A bundled notebook's simulations are counted from its parameters
    (:mod:`simfunnel.reporting.runs`) and a report of more than ``max_runs`` is
    refused before it runs (default :data:`simfunnel.limits.DEFAULT_MAX_RUNS`).

        Beside the notebook, HTML and JSON, an .xlsx workbook holds the headline tables; a
    page that links docs/assumptions.md (its provenance box) gets a copy beside it.
    ``progress`` shows a bar of cells done out of the total (papermill's; a dict
    passes options to its tqdm bar).

    The notebook runs into a temporary folder inside ``out``; only when every cell
    has run and the HTML is exported do the files move into place, each replacing
    its previous version at once. A failed run never leaves a headline JSON, an HTML
    page or a workbook that could be taken for its result: the previous report's
    files are renamed ``NAME.previous.*``, and the partial notebook is kept as
    ``NAME.ipynb``.

    Raises
    ------
    ReportError
        Unknown parameter or wrong type, or ``out`` cannot be written (nothing is run).
    LimitError
        More than ``max_runs`` simulations (nothing is run).
    NotebookFailed
        A cell raised: the cell is named by its index in the saved notebook and its
        first line, with its error.
    """
    from simfunnel.reporting.kernel import ReportKernel, notebook_imports
    from simfunnel.reporting.runs import check_report_runs

    path = resolve_notebook(notebook)
    check_before_kernel(path, parameters or {})
    # the kernel boots and imports the notebook's modules while the rest is prepared
    with ReportKernel(notebook_imports(path)) as kernel:
        declared = check_parameters(path, parameters or {})
        check_report_runs(path, declared, [parameters or {}], max_runs)
        return _run_on(kernel, path, parameters or {}, out, name, progress, last=True)


def _run_on(
    kernel: Any,
    path: Path,
    parameters: dict[str, Any],
    out: str | Path,
    name: str | None,
    progress: bool | dict[str, Any],
    last: bool = False,
) -> Report:
    """:func:`run_report` on a running :class:`~simfunnel.reporting.kernel.ReportKernel`.

    After a failure the kernel is replaced by a fresh one, ready for the next report.
    After the ``last`` report's cells the kernel is released before the export.
    """
    pm = _papermill()
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from simfunnel.reporting.kernel import KernelFailed, papermill_engine

    params = _with_default_baseline(parameters, notebook_parameters(path))
    declared = check_parameters(path, params)
    params = absolute_paths(params)
    name = _slug(name or path.stem)
    folder = _output_folder(out)
    final = {ext: folder / f"{name}.{ext}" for ext in ("ipynb", "html", "json", "xlsx")}
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder))
    try:
        executed = staging / f"{name}.ipynb"
        headline_path = staging / f"{name}.json"
        if "headline_json" in declared:
            params["headline_json"] = str(headline_path.resolve())
        exporter = _exporter_soon()  # built in a thread while the cells run
        try:
            kernel.prepare(folder)
            pm.execute_notebook(
                str(path),
                str(executed),
                parameters=params,
                kernel_name="python3",
                progress_bar=progress,
                log_output=False,
                request_save_on_cell_execute=False,  # a failure saves the partial notebook
                engine_name=papermill_engine(),
                kernel=kernel,
            )
        except PapermillExecutionError as exc:
            kernel.replace()
            _set_aside(final, name)
            if executed.is_file():
                os.replace(executed, final["ipynb"])
            raise NotebookFailed(_failure(path.stem, final["ipynb"], exc)) from None
        except DeadKernelError:
            kernel.replace()
            _set_aside(final, name)
            raise NotebookFailed(
                f"{path.stem}: the kernel died while running a cell (the cell ended its "
                "process, or it ran out of memory)"
            ) from None
        except KernelFailed as exc:
            kernel.replace()
            _set_aside(final, name)
            raise NotebookFailed(f"{path.stem}: {exc}") from None
        if last:
            kernel.release()
        import nbformat

        source_nb = nbformat.read(path, as_version=4)
        source_nb.metadata["simfunnel_stem"] = path.stem
        export_html(
            executed,
            staging / f"{name}.html",
            title=page_title(source_nb, name),
            exporter=exporter.result(),
        )
        headline = json.loads(headline_path.read_text()) if headline_path.is_file() else {}
        given = {k: v for k, v in params.items() if k != "headline_json"}
        if headline:
            from simfunnel.reporting.workbook import headline_sheets, write_workbook

            facts = {"report": path.stem, **{f"parameter {k}": v for k, v in given.items()}}
            write_workbook(headline_sheets(headline, facts), staging / f"{name}.xlsx")
        for stale in folder.glob(f"{glob.escape(name)}.previous.*"):
            stale.unlink()  # set aside by an earlier failure: this run supersedes it
        _copy_assumptions(staging / f"{name}.html", folder)
        for ext, target in final.items():
            produced = staging / target.name
            if produced.is_file():
                os.replace(produced, target)
            elif target.exists():  # this run made none: an old one must not stay
                os.replace(target, folder / f"{name}.previous.{ext}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Report(
        name=name,
        notebook=final["ipynb"],
        html=final["html"],
        headline_json=final["json"],
        parameters=given,
        headline=headline,
        xlsx=final["xlsx"] if final["xlsx"].is_file() else None,
    )


def _copy_assumptions(page: Path, folder: Path) -> None:
    """Put docs/assumptions.md beside a report whose page links it (its provenance box)."""
    from simfunnel.assumptions import assumptions_path
    from simfunnel.reporting.provenance import ASSUMPTIONS_LINK

    if f'href="{ASSUMPTIONS_LINK}' not in page.read_text(encoding="utf-8"):
        return
    target = folder / ASSUMPTIONS_LINK
    tmp = folder / f".{ASSUMPTIONS_LINK}.tmp"
    shutil.copyfile(assumptions_path(), tmp)
    os.replace(tmp, target)


def _with_default_baseline(
    parameters: dict[str, Any], declared: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The baseline of a comparison notebook defaults to the first scenario listed.

    When ``scenarios`` is given without ``baseline``, the baseline is passed empty,
    which :func:`simfunnel.compare` reads as the first scenario, rather than the
    notebook's own default, which may not even be among the scenarios given. A
    notebook's interactive ``what_if`` cell is off in a report unless asked for.
    """
    params = dict(parameters)
    if "scenarios" in params and "baseline" not in params and "baseline" in declared:
        params["baseline"] = ""
    if "what_if" in declared and "what_if" not in params:
        params["what_if"] = False  # no one is there to move the sliders of a report
    return params


def _set_aside(final: dict[str, Path], name: str) -> None:
    """Rename a previous report's files to ``NAME.previous.*``, so none reads as current."""
    for ext, target in final.items():
        if target.exists():
            os.replace(target, target.with_name(f"{name}.previous.{ext}"))


def _failure(stem: str, saved: Path, exc: Any) -> str:
    """One line naming the failed cell as the user finds it in the saved notebook."""
    import nbformat

    error = str(exc.evalue).strip().splitlines()[0] if exc.evalue else ""
    where = f"cell {exc.cell_index}"
    try:
        nb = nbformat.read(saved, as_version=4)
    except (OSError, ValueError):
        nb = None
    if nb is not None:
        for index, cell in enumerate(nb.cells):
            outputs = cell.get("outputs", [])
            if any(o.get("output_type") == "error" for o in outputs):
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                first = first if len(first) <= 60 else first[:57] + "..."
                where = f"cell {index} ({first!r})"
                break
    return (
        f"{stem}: {where} failed: {exc.ename}: {error}; the partial notebook is kept "
        f"at {saved} (cells counted from 0)"
    )


def refresh_notebook(path: str | Path) -> Path:
    """Execute a notebook in place with its default parameters, for committing.

    Papermill's volatile metadata (timestamps, durations, absolute paths) is
    stripped, so the stored notebook changes only when its outputs do. It runs as a
    report would (no interactive what-if), and keeps no injected parameters cell.
    """
    import nbformat
    import papermill as pm

    path = Path(path)
    config = _kernel_config()
    try:
        pm.execute_notebook(
            str(path),
            str(path),
            parameters=_with_default_baseline({}, notebook_parameters(path)),
            cwd=str(path.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            config=config,
        )
    finally:
        shutil.rmtree(os.path.dirname(config.KernelManager.ip), ignore_errors=True)
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    # the committed notebook keeps its own parameters cell only, and no output of an
    # interactive cell (tagged nbval-skip: run live, never compared)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "nbval-skip" in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
    return path


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: read as YAML (numbers, lists, mappings), else text.

    Raises
    ------
    ReportError
        For an impossible date such as ``2026-13-45``.
    """
    import yaml

    from simfunnel.textio import InvalidDateError, parse_yaml, yaml_problem

    try:
        return parse_yaml(text)
    except InvalidDateError as exc:
        raise ReportError(f"parameter value {text!r}: {yaml_problem(exc)}") from None
    except yaml.YAMLError:
        return text


def read_parameters_file(path: str | Path) -> Any:
    """The contents of a ``-f`` parameter file (YAML, UTF-8, safe loader).

    Raises
    ------
    ReportError
        The file cannot be read, is not UTF-8 text, or is not valid YAML.
    """
    import yaml

    from simfunnel.textio import TextFileError, parse_yaml, read_text, yaml_problem

    try:
        return parse_yaml(read_text(path))
    except TextFileError as exc:
        raise ReportError(f"-f {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ReportError(f"-f {path}: cannot parse: {yaml_problem(exc)}") from None


def parameter_sets(data: Any) -> list[dict[str, Any]]:
    """Parameter sets from a file's contents: one mapping, a list of them, or a grid.

    A grid is ``{"grid": {"name": [v1, v2], ...}, "fixed": {...}}``: every combination
    of the grid's values, each with the fixed values.
    """
    if isinstance(data, dict) and "grid" in data:
        grid, fixed = data["grid"], data.get("fixed", {}) or {}
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            raise ReportError("parameter file: 'grid' must map names to non-empty lists")
        if not isinstance(fixed, dict):
            raise ReportError("parameter file: 'fixed' must be a mapping")
        return [
            {**fixed, **dict(zip(grid, combo, strict=True))}
            for combo in itertools.product(*grid.values())
        ]
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        return list(data)
    raise ReportError("parameter file: expected a mapping, a list of mappings, or a grid")


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "+".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "+".join(_short(v) for v in value)
    return str(value)


def _varied_keys(sets: list[dict[str, Any]]) -> list[str]:
    """Parameters whose value differs between the sets (or is missing from some)."""
    keys = list(dict.fromkeys(k for params in sets for k in params))
    missing = object()
    return [
        k
        for k in keys
        if len({json.dumps(p.get(k, missing), sort_keys=True, default=str) for p in sets}) > 1
    ]


def set_names(sets: list[dict[str, Any]]) -> list[str]:
    """Folder names of a batch's reports: a number and every parameter that varies.

    ``01_scenarios-volume_heavy+quality_heavy``, ``02_scenarios-volume_heavy+balanced``:
    lists and mappings are spelled out too, so no two sets read alike. A parameter
    with the same value in every set is left out (with one set, every one is shown).
    """
    varied = _varied_keys(sets) if len(sets) > 1 else list(sets[0]) if sets else []
    names = []
    for index, params in enumerate(sets, start=1):
        shown = "_".join(f"{k}-{_short(params[k])}" for k in varied if k in params)
        names.append(_slug(f"{index:02d}_{shown}" if shown else f"{index:02d}"))
    return names


def run_batch(
    notebook: str | Path,
    sets: list[dict[str, Any]],
    out: str | Path,
    progress: bool = False,
    kernel_per_report: bool = False,
    max_runs: int | None = None,
) -> Path:
    """One report per parameter set into ``out``, and an ``index.html`` linking them.

    Every set is checked before the first runs, and the batch's simulations are
    counted (:mod:`simfunnel.reporting.runs`): a batch of more than ``max_runs`` in
    all is refused (default :data:`simfunnel.limits.DEFAULT_MAX_RUNS`). A set whose
    notebook fails is listed in the index with its error, and the others still run.
    ``progress`` shows a bar of reports done out of the total, and under it the
    current report's cells.

    The reports run one after another on one kernel, reset between reports (see
    :mod:`simfunnel.reporting.kernel`), which spares each report after the first the
    kernel's start and the notebook's imports; after a failure the next report gets a
    fresh kernel. ``kernel_per_report`` starts a fresh kernel for every report, for a
    notebook that changes state a reset cannot undo.

    Returns
    -------
    Path
        The index page.
    """
    from contextlib import nullcontext

    from simfunnel.reporting.kernel import ReportKernel, notebook_imports
    from simfunnel.reporting.runs import check_report_runs

    path = resolve_notebook(notebook)
    for params in sets:  # every set, before any kernel starts
        check_before_kernel(path, params)
    check_report_runs(path, notebook_parameters(path), sets, max_runs)
    warm = notebook_imports(path)
    shared = nullcontext(None) if kernel_per_report else ReportKernel(warm)
    with shared as kernel:
        folder = _output_folder(out)
        from tqdm.auto import tqdm

        rows: list[tuple[str, dict[str, Any], Report | None, str]] = []
        with tqdm(total=len(sets), desc="reports", unit="report", disable=not progress) as bar:
            for number, (name, params) in enumerate(zip(set_names(sets), sets, strict=True)):
                cells = {"desc": name[:30], "leave": False} if progress else False
                last = number == len(sets) - 1
                try:
                    if kernel is None:
                        done = run_report(path, params, folder / name, name, progress=cells)
                    else:
                        done = _run_on(kernel, path, params, folder / name, name, cells, last)
                    rows.append((name, params, done, ""))
                except NotebookFailed as exc:
                    rows.append((name, params, None, str(exc)))
                bar.update(1)
    index = folder / "index.html"
    partial = folder / ".index.html.partial"
    partial.write_text(_index_page(path.stem, rows), encoding="utf-8")
    os.replace(partial, index)
    failures = [r for r in rows if r[2] is None]
    if failures:
        raise NotebookFailed(
            f"{len(failures)} of {len(rows)} reports failed (see {index}): {failures[0][3]}"
        )
    return index


_SUMMARY_KEY = re.compile(r"^(?P<kpi>[^\[\]]+)\[(?P<label>[^\]]+)\]$")


def _fmt(key: str, value: Any) -> str:
    from simfunnel.formatting import KPI_LABELS, format_number, kpi_kind

    if isinstance(value, dict):
        return html.escape(", ".join(f"{k} = {v}" for k, v in value.items()))
    if isinstance(value, list | tuple):
        return html.escape(", ".join(map(str, value)))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    kind = kpi_kind(key) if key in KPI_LABELS else "number"
    return html.escape(format_number(value, kind, statistic=isinstance(value, float)))


def _heading(key: str) -> str:
    from simfunnel.formatting import KPI_LABELS, kpi_label

    return kpi_label(key) if key in KPI_LABELS else key


def _index_page(title: str, rows: list[tuple[str, dict[str, Any], Report | None, str]]) -> str:
    """The batch's index: what every report shares, then one row per report.

    Only the parameters that vary get a column. Headline numbers named
    ``kpi[strategy]`` share one column per KPI, a line per strategy, so the page
    stays narrow however many strategies a report compares.
    """
    sets = [params for _, params, _, _ in rows]
    varied = _varied_keys(sets)
    common = {k: v for k, v in sets[0].items() if k not in varied} if sets else {}
    columns: dict[str, list[tuple[str, str]]] = {}
    for _, _, report, _ in rows:
        for key in report.headline.get("summary", {}) if report else {}:
            match = _SUMMARY_KEY.match(key)
            kpi, label = (match["kpi"], match["label"]) if match else (key, "")
            if (label, key) not in columns.setdefault(kpi, []):
                columns[kpi].append((label, key))
    head = "".join(
        f"<th>{html.escape(h)}</th>" for h in ["report", *varied, *map(_heading, columns)]
    )
    body = []
    for name, params, report, error in rows:
        link = (
            f'<a href="{html.escape(name)}/{html.escape(report.html.name)}">{html.escape(name)}</a>'
            if report
            else html.escape(name)
        )
        cells = [link] + [_fmt(k, params.get(k, "")) for k in varied]
        if report:
            summary = report.headline.get("summary", {})
            for kpi, entries in columns.items():
                lines = [
                    (f"{html.escape(label)}: " if label else "") + _fmt(kpi, summary[key])
                    for label, key in entries
                    if key in summary
                ]
                cells.append("<br>".join(lines))
        else:
            cells.append(f'<span class="error">failed: {html.escape(error)}</span>')
            cells += [""] * (len(columns) - 1)
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    shared = " &middot; ".join(f"{html.escape(k)} <b>{_fmt(k, v)}</b>" for k, v in common.items())
    human = title.replace("_", " ").capitalize()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(human)}: {len(rows)} reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 100%; }}
table {{ border-collapse: collapse; max-width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top;
  overflow-wrap: anywhere; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
.error {{ color: #b00; }}
</style></head><body>
<h1>{html.escape(human)}: {len(rows)} reports</h1>
{f"<p>Every report: {shared}</p>" if shared else ""}
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
