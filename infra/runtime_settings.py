"""The names of the functions' runtime settings, from `schema/settings.json`.

The runtime reads the same file (lambdas/aiwf/settings.py), so a component never spells a
variable name: it asks `environment(state_machine_arn=...)`, and a setting the file does not
declare stops the program at plan time instead of deploying a variable nobody reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import pulumi
from pydantic.alias_generators import to_camel

from .packaging import REPO_ROOT

SETTINGS_PATH = REPO_ROOT / "schema" / "settings.json"

# What a component may give for one setting: a Pulumi value (ARNs, URLs), or a plain one that is
# written the way the runtime parses its declared type.
SettingValue = pulumi.Input[str] | bool | int | float | Sequence[str]


@cache
def declared() -> dict[str, dict[str, Any]]:
    """Every declared setting: key -> environment, type, default, description."""
    return json.loads(SETTINGS_PATH.read_text())["settings"]


def _declaration(key: str) -> dict[str, Any]:
    found = declared().get(to_camel(key))
    if found is None:
        raise ValueError(f"{key!r} is not a runtime setting (schema/settings.json declares {', '.join(declared())})")
    return found


def default(key: str) -> Any:
    """The runtime's default of setting `key` (snake_case), for infra that writes or sizes around it."""
    return _declaration(key).get("default")


def _text(kind: str, value: SettingValue) -> pulumi.Input[str]:
    if isinstance(value, pulumi.Output):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "list" and not isinstance(value, str):
        return ",".join(value)  # type: ignore[arg-type]
    if kind in ("integer", "number") and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"{value!r} is not a {kind}")


def environment(**values: SettingValue | None) -> dict[str, pulumi.Input[str]]:
    """Function environment variables for the given settings (snake_case keys); None leaves one out."""
    variables: dict[str, pulumi.Input[str]] = {}
    for key, value in values.items():
        found = _declaration(key)
        if value is not None:
            variables[found["environment"]] = _text(found["type"], value)
    return variables
