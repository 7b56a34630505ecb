"""How a change of each setting takes effect: a SIGHUP applies it, or it needs a restart.

Every leaf setting declares one in its annotation (`Annotated[int, RESTART]`), next to its
definition; a section (a nested model) declares nothing itself, its leaves do, and a list
of models (`organizations`) is one leaf. The reload reads these declarations, so there is
no list of keys to keep in step with the schema.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel


class Reload(enum.Enum):
    """How a change of one setting takes effect."""

    APPLIED = "applied by a reload (SIGHUP)"
    RESTART = "needs a restart"


APPLIED = Reload.APPLIED
RESTART = Reload.RESTART


def declared(model: type[BaseModel], prefix: str = "") -> dict[str, Reload | None]:
    """Every leaf setting of `model`, by dotted key, with its declaration (None: none)."""
    found: dict[str, Reload | None] = {}
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.update(declared(annotation, f"{key}."))
            continue
        marks = [m for m in info.metadata if isinstance(m, Reload)]
        found[key] = marks[0] if marks else None
    return found


def needing_restart(old: BaseModel, new: BaseModel) -> list[str]:
    """The dotted keys that changed from `old` to `new` and that a reload cannot apply
    (an undeclared one counts as needing a restart: the safe reading)."""
    return [
        key
        for key, how in declared(type(old)).items()
        if how is not APPLIED and _dotted(old, key) != _dotted(new, key)
    ]


def _dotted(settings: BaseModel, key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value
