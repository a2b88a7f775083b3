"""The variant model: which answer sets of the template backforge renders and checks.

A *variant* is one full set of answers to the template's questions. Copier's `copier.yml` is the
single source of truth for the questions, their choices, defaults, `when` rules and validators:
`questions` reads it and evaluates its Jinja exactly as Copier does; `sets` builds the variant
sets (`select`); `naming` gives each variant an id and the command that reproduces it.
"""

from __future__ import annotations

from backforge.model.naming import reproduce_command, variant_id, variant_ids, yaml_flow
from backforge.model.questions import (
    CODE_QUESTIONS,
    PLACEHOLDER_ANSWERS,
    Question,
    VariantError,
    default_answers,
    load_questions,
    resolve,
    validate,
)
from backforge.model.sets import (
    ALL_CHOICES,
    PRESETS,
    parse_answers,
    parse_shard,
    preset_answers,
    select,
    shard,
)
from backforge.model.variant import Variant, variant_in, variant_of

__all__ = [
    "ALL_CHOICES",
    "CODE_QUESTIONS",
    "PLACEHOLDER_ANSWERS",
    "PRESETS",
    "Question",
    "Variant",
    "VariantError",
    "default_answers",
    "load_questions",
    "parse_answers",
    "parse_shard",
    "preset_answers",
    "reproduce_command",
    "resolve",
    "select",
    "shard",
    "validate",
    "variant_id",
    "variant_ids",
    "variant_in",
    "variant_of",
    "yaml_flow",
]
