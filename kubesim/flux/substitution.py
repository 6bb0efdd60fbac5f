"""Flux post-build variable substitution (`${var}`, `${var:=default}`, `${var:-default}`), strict."""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[=-]([^}]*))?\}")


class MissingVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Replace variables; one without a value or default fails, as Flux's strict mode does."""

    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in variables:
            return variables[name]
        if default is not None:
            return default
        raise MissingVariable(name)

    return _VAR.sub(replace, text)
