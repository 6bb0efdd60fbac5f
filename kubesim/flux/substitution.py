"""Flux post-build variable substitution (fluxcd/pkg/envsubst, the subset manifests use).

`${var}`, `${var:=default}`, `${var:-default}`, `${var=default}`, `${var-default}`; `$${var}`
escapes to a literal `${var}`.  In strict mode (kustomize-controller's
`StrictPostBuildSubstitutions` feature gate) a bare `${var}` that is not provided fails; a
variable with a default never does.  Without strict mode a missing variable becomes ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
VAR_NAME_PATTERN = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
_TOKEN = re.compile(r"\$\$|\$\{([^}:=\-]*)(?:(:?[=-])([^}]*))?\}")


class SubstitutionError(Exception):
    """The message envsubst gives, e.g. `variable not set (strict mode): "image_tag"`."""


def substitute(text: str, variables: Mapping[str, str], *, strict: bool) -> str:
    for name in variables:
        if not VAR_NAME.match(name):
            raise SubstitutionError(
                f"'{name}' var name is invalid, must match '{VAR_NAME_PATTERN}'"
            )

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, operator, default = m.group(1), m.group(2), m.group(3)
        value = variables.get(name)
        if operator is None:
            if value is None and strict:
                raise SubstitutionError(
                    f'variable substitution failed: variable not set (strict mode): "{name}"'
                )
            return value or ""
        return value if value else (default or "")

    return _TOKEN.sub(replace, text)
