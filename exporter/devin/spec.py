"""Devin's published contract (`exporter/devin/contract/*.openapi.yaml`), as a checker.

Used by the demo API, which refuses any request the contract does not document (stricter
than Devin on purpose, so that it cannot agree with a client's mistake), and by the tests,
which check every request the client can send and every answer the demo gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_CONTRACT = Path(__file__).parent / "contract"


@dataclass(frozen=True)
class Problem:
    """One way a request breaks the contract, as FastAPI's HTTPValidationError items say it."""

    loc: tuple[str, ...]
    msg: str
    type: str

    def as_detail(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


@dataclass(frozen=True)
class Operation:
    """One GET operation of the contract."""

    path: str  # the template, as written in the contract
    document: str  # the URI of the file it comes from
    spec: Mapping[str, Any]  # the operation object
    registry: Registry[Any]
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict, repr=False)

    @property
    def parameters(self) -> dict[str, Mapping[str, Any]]:
        return {p["name"]: p for p in self.spec.get("parameters", []) if p["in"] == "query"}

    @property
    def _pointer(self) -> str:
        return "/paths/" + self.path.replace("~", "~0").replace("/", "~1") + "/get"

    @property
    def references(self) -> list[str]:
        refs = self.spec.get("x-reference", [])
        return [refs] if isinstance(refs, str) else list(refs)

    def check_query(self, query: Mapping[str, Sequence[str]]) -> list[Problem]:
        """What is wrong with a query (name -> every value sent): undocumented names,
        missing required ones, repeated scalars and values of the wrong type."""
        problems: list[Problem] = []
        documented = self.parameters
        for name in query:
            if name not in documented:
                problems.append(
                    Problem(("query", name), "undocumented query parameter", "extra_forbidden")
                )
        indices = {p["name"]: i for i, p in enumerate(self.spec.get("parameters", []))}
        for name, parameter in documented.items():
            values = list(query.get(name, ()))
            schema = parameter.get("schema", {})
            where = f"{self._pointer}/parameters/{indices[name]}/schema"
            if not values:
                if parameter.get("required", False):
                    problems.append(Problem(("query", name), "Field required", "missing"))
                continue
            if _is_array(schema):
                value: Any = [_coerce(v, _items_schema(schema)) for v in values]
            elif len(values) > 1:
                problems.append(Problem(("query", name), "sent more than once", "repeated"))
                continue
            else:
                value = _coerce(values[0], schema)
            for error in self._validator(where).iter_errors(value):
                problems.append(Problem(("query", name), *_pydantic_words(error)))
            if schema_format(schema) == "date-time" and not _is_date_time(values[0]):
                problems.append(Problem(("query", name), "not an RFC 3339 date-time", "datetime"))
        return problems

    def check_response(self, status: int, body: Any) -> list[str]:
        """What is wrong with an answer's JSON body for `status`."""
        response = self.spec.get("responses", {}).get(str(status))
        if response is None:
            return [f"status {status} is not documented"]
        if "schema" not in response.get("content", {}).get("application/json", {}):
            return []
        where = f"{self._pointer}/responses/{status}/content/application~1json/schema"
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or 'body'}: {e.message}"
            for e in self._validator(where).iter_errors(body)
        ]

    def _validator(self, pointer: str) -> Draft202012Validator:
        """A validator of the schema at `pointer` in the operation's file, whose own
        `$ref`s resolve against that file."""
        validator = self._validators.get(pointer)
        if validator is None:
            schema = {"$ref": f"{self.document}#{pointer}"}
            validator = Draft202012Validator(schema, registry=self.registry)
            self._validators[pointer] = validator
        return validator


class Contract:
    """Every operation of the vendored contract, found by a request's concrete path."""

    def __init__(self, operations: Sequence[Operation]) -> None:
        self.operations = tuple(operations)
        self._patterns = [(_pattern(op.path), op) for op in self.operations]

    @classmethod
    @cache
    def load(cls) -> Contract:
        operations = []
        for file in sorted(_CONTRACT.iterdir()):
            if not file.name.endswith(".openapi.yaml"):
                continue
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
            # `$ref: '#/components/...'` inside an operation resolves against its file.
            uri = f"urn:devin-contract:{file.name}"
            resource = Resource.from_contents(document, default_specification=DRAFT202012)
            registry: Registry[Any] = Registry().with_resource(uri, resource)
            for path, item in document.get("paths", {}).items():
                if "get" in item:
                    operations.append(Operation(path, uri, item["get"], registry))
        return cls(operations)

    def operation(self, path: str) -> Operation | None:
        """The GET operation whose template matches a concrete path, if any."""
        for pattern, operation in self._patterns:
            if pattern.fullmatch(path):
                return operation
        return None

    def templates(self) -> Iterator[str]:
        return (op.path for op in self.operations)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(schema.get("anyOf", [])) or [schema]


def _is_array(schema: Mapping[str, Any]) -> bool:
    return any(b.get("type") == "array" for b in _branches(schema))


def _items_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    for branch in _branches(schema):
        if branch.get("type") == "array":
            items: Mapping[str, Any] = branch.get("items", {})
            return items
    return {}


def schema_format(schema: Mapping[str, Any]) -> str | None:
    for branch in _branches(schema):
        if "format" in branch:
            return str(branch["format"])
    return None


def _coerce(text: str, schema: Mapping[str, Any]) -> Any:
    """A query string as the JSON value the schema expects, where it reads as one: FastAPI
    reads `12` as an integer for an integer parameter, and `abc` fails its validation."""
    types = {b.get("type") for b in _branches(schema)}
    if "integer" in types and re.fullmatch(r"[+-]?\d{1,20}", text):
        return int(text)
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _pydantic_words(error: ValidationError) -> tuple[str, str]:
    """A JSON Schema error as FastAPI (pydantic) words it: message and type."""
    keyword, limit = error.validator, error.validator_value
    if keyword == "minimum":
        return f"Input should be greater than or equal to {limit}", "greater_than_equal"
    if keyword == "maximum":
        return f"Input should be less than or equal to {limit}", "less_than_equal"
    if isinstance(error.instance, str) and "integer" in str(error.schema):
        return (
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )
    return error.message, "value_error"


def _is_date_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
