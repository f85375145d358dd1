"""Input rules shared by every entry point (API schemas, CLI, stores): no string may carry a NUL character.

PostgreSQL refuses ``\\x00`` in text and JSON columns while SQLite stores it, so without one rule the same request is
a 201 on one backend and a 500 on the other. The rule is: a NUL anywhere in a string (values, nested lists, mapping
keys) is bad input, named by its dotted path. The API schemas apply it through :class:`NulFreeModel` (a 422 naming the
field); the intake, the key service and the stores call :func:`reject_nul` (``InvalidInputError``, also a 422 / CLI
exit code), so the CLI and in-process callers meet the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, model_validator

from core.errors import InvalidInputError

NUL = "\x00"
_MESSAGE = "must not contain NUL (\\x00) characters"


def nul_path(value: Any, path: str = "") -> str | None:
    """Dotted path of the first string holding a NUL inside ``value`` (``""`` for ``value`` itself), else ``None``.

    Walks mappings (keys and values), lists and tuples; other types hold no text.
    """
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return child.replace(NUL, "\\x00")
            found = nul_path(item, child)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]" if path else f"[{index}]")
            if found is not None:
                return found
    return None


def reject_nul(value: Any, *, field: str) -> None:
    """Raise ``InvalidInputError`` (field = the dotted path) when ``value`` holds a NUL anywhere."""
    found = nul_path(value, field)
    if found is not None:
        raise InvalidInputError(f"{found} {_MESSAGE}", field=found)


def no_nul(value: str) -> str:
    """Pydantic ``AfterValidator`` for single string parameters (path / query / header values)."""
    if NUL in value:
        raise ValueError(_MESSAGE)
    return value


class NulFreeModel(BaseModel):
    """Base of request schemas: any NUL in any string of the body is a validation error naming its field."""

    @model_validator(mode="before")
    @classmethod
    def _reject_nul(cls, data: Any) -> Any:
        found = nul_path(data)
        if found is not None:
            raise ValueError(f"{found or 'body'} {_MESSAGE}")
        return data
