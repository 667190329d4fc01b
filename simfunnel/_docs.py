"""docs/scenario-reference.md, generated from the scenario schema (``make docs``).

Every field of :class:`simfunnel.parameters.Scenario`, section by section, with its type,
default, allowed range, description and the section of docs/assumptions.md that gives
its default's figure and source. ``python -m simfunnel._docs`` rewrites the page;
``--check`` exits 1 when the committed page is not what the schema gives.
"""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from simfunnel.assumptions import cite
from simfunnel.parameters import Scenario

PAGE = Path(__file__).resolve().parents[1] / "docs" / "scenario-reference.md"

_INTRO = """\
# Scenario reference

Generated from the schema (`simfunnel/parameters.py`) by `make docs`; do not edit by
hand. Every field of a scenario file, section by section: its type, its default, the
values it accepts and what it means. The last column names the section of
[assumptions.md](assumptions.md) that gives the default's figure and published source.
`simfunnel explain SCENARIO` shows the value each field takes in a scenario, and where
it came from. A field a file does not set takes its default; an unknown field is refused.

Sources are a list: `sources[]` stands for each of them (`sources.NAME.field` on the
command line, `--set sources.referral.cost_per_lead_usd=150`).
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        inner = _type_name(args[0]) if args else "value"
        return f"list of {inner}"
    if origin is dict:
        return f"mapping of {_type_name(args[1])}"
    if get_origin(annotation) is not None and hasattr(annotation, "__metadata__"):
        return _type_name(args[0])
    if annotation is type(None):
        return "null"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see its section"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:.6g}`"
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    if isinstance(value, dict):
        return "`{}`"
    return f"`{value}`"


def _limits(field: FieldInfo) -> str:
    words = {
        annotated_types.Ge: (">=", "ge"),
        annotated_types.Gt: (">", "gt"),
        annotated_types.Le: ("<=", "le"),
        annotated_types.Lt: ("<", "lt"),
        annotated_types.MinLen: ("length >=", "min_length"),
        annotated_types.MaxLen: ("length <=", "max_length"),
    }
    metadata = list(field.metadata)
    for arg in get_args(field.annotation):  # Probability = Annotated[float, Field(ge, le)]
        for extra in getattr(arg, "__metadata__", ()):
            metadata.extend(getattr(extra, "metadata", [extra]))
    for extra in getattr(field.annotation, "__metadata__", ()):
        metadata.extend(getattr(extra, "metadata", [extra]))
    parts = []
    for item in metadata:
        for kind, (word, attr) in words.items():
            if isinstance(item, kind):
                value = getattr(item, attr)
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                parts.append(f"{word} {shown}")
    return ", ".join(parts)


def _summary(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def _sections() -> list[tuple[str, type[BaseModel]]]:
    """(path, model) for the scenario and each nested section, depth first."""
    out: list[tuple[str, type[BaseModel]]] = []

    def visit(path: str, model: type[BaseModel]) -> None:
        out.append((path, model))
        for name, field in model.model_fields.items():
            for arg in (field.annotation, *get_args(field.annotation)):
                if inspect.isclass(arg) and issubclass(arg, BaseModel):
                    sub = f"{path}.{name}" if path else name
                    if get_origin(field.annotation) is tuple:
                        sub += "[]"
                    visit(sub, arg)

    visit("", Scenario)
    return out


def reference() -> str:
    """The page's text."""
    lines = [_INTRO]
    for path, model in _sections():
        title = path or "scenario (top level)"
        lines.append(f'<a id="{model.__name__.lower()}"></a>\n')
        lines.append(f"## `{title}`\n")
        lines.append(f"{_summary(model)}\n")
        lines.append("| field | type | default | allowed | description | default's source |")
        lines.append("|---|---|---|---|---|---|")
        for name, field in model.model_fields.items():
            full = f"{path}.{name}" if path else name
            dotted = full.replace("[]", ".NAME")
            plain = (
                _is_model(field) or name in ("name", "description") or full.startswith("provenance")
            )
            source = "" if plain else cite(dotted)
            link = f"[{source.partition('#')[2]}](assumptions.md#{source.partition('#')[2]})"
            description = (field.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                f"{_limits(field)} | {description} | {link if source else ''} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _is_model(field: FieldInfo) -> bool:
    return any(
        inspect.isclass(a) and issubclass(a, BaseModel)
        for a in (field.annotation, *get_args(field.annotation))
    )


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` say whether it is current (exit 1 if not)."""
    args = sys.argv[1:] if argv is None else argv
    text = reference()
    if "--check" in args:
        current = PAGE.is_file() and PAGE.read_text(encoding="utf-8") == text
        if not current:
            print(f"{PAGE.name} is not current: run make docs", file=sys.stderr)
        return 0 if current else 1
    PAGE.write_text(text, encoding="utf-8")
    print(PAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
