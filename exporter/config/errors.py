"""`ConfigError`, and the pydantic and YAML errors turned into "key: reason" lines that
name the file and never echo a value that may be a key."""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from exporter.config.settings import Settings


class ConfigError(Exception):
    """A config that cannot be used; the message names the file and the key, never a secret."""


Problem = tuple[str, str]
"""One thing wrong with a config: where (a dotted key or a variable) and what."""


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or inside `list[...]`, `... | None`, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        if (model := _model_in(argument)) is not None:
            return model
    return None


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the config takes where `loc` points (a section, or an item of a list)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def did_you_mean(name: str, known: list[str], spell: Any = str) -> str:
    """`; did you mean X?` for a near miss, else the keys that would be accepted."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {spell(close[0])}?"
    return f" (known: {', '.join(spell(k) for k in known)})" if known else ""


# `windows: ...`: a model-level check's message that starts with the key it is about.
_NAMED_KEY = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*): (.+)$", re.DOTALL)


def validation_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = item["loc"]
        key = _format_location(loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            message = "not a known setting" + did_you_mean(loc[-1], _keys_at(loc[:-1]))
        named = _NAMED_KEY.match(message) if not loc else None
        if named:  # a check across sections that names the key it is about
            key, message = named.group(1), named.group(2)
        problems.append((key, message))
    return problems


def describe(problems: list[Problem], source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    lines += [f"  {key}: {message}" for key, message in problems]
    return "\n".join(lines)


def _without_long_quotes(text: str) -> str:
    """A parser's message with any long quoted text left out: it may be a pasted key."""
    return re.sub(r"'[^']{17,}'", "'...'", text)


def yaml_reason(err: yaml.YAMLError) -> str:
    """` at line 4, column 3: expected ',' or ']', but got ':' (while parsing a flow
    sequence at line 2, column 12)`: where the parser stopped, and why."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return ""
    where = ""
    if (mark := err.problem_mark) is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    reason = f": {_without_long_quotes(err.problem)}" if err.problem else ""
    if err.context:
        context = _without_long_quotes(err.context)
        if (start := err.context_mark) is not None:
            context += f" at line {start.line + 1}, column {start.column + 1}"
        reason += f" ({context})"
    return where + reason
