"""One variant as backforge's steps use it: its answers and what copier.yml derives from them.

The computed values of copier.yml (`when: false`: `redis`, `redis_features`, `db_service`, ...)
are read from copier.yml, evaluated like Copier does, so that no module keeps its own copy of
them (which features need Redis, which database is the default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backforge.model.questions import Template, VariantError, load_template


@dataclass(frozen=True)
class Variant:
    """A variant's answers and every value Copier's templates see for it."""

    answers: Mapping[str, Any]
    """The asked answers (as `select` gives them: defaults in, questions not asked left out)."""
    values: Mapping[str, Any]
    """The answers, the defaults of the questions not asked and the computed values."""

    @property
    def database(self) -> str:
        """The `database` answer."""
        return str(self.values["database"])

    @property
    def needs_redis(self) -> bool:
        """copier.yml's computed `redis`: a chosen feature needs Redis (false when the template
        computes no such value)."""
        return bool(self.values.get("redis", False))

    def value(self, name: str) -> Any:
        """A question's value (answered, default or computed); KeyError when copier.yml has none."""
        return self.values[name]


def variant_in(template: Template, answers: Mapping[str, Any]) -> Variant:
    """`answers` as a Variant of the loaded `template` (VariantError when a value cannot be
    computed)."""
    walk = template.walk(answers)
    fatal = [issue.message for issue in walk.issues if issue.fatal]
    if fatal:
        raise VariantError("; ".join(fatal))
    return Variant(answers=dict(answers), values=walk.values)


def variant_of(template: Path, answers: Mapping[str, Any]) -> Variant:
    """`answers` as a Variant of the template in the folder `template`."""
    return variant_in(load_template(Path(template)), answers)
