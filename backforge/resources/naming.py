"""A resource's names: the rules a name follows, and what is derived from the singular name.

`invoice` → plural `invoices`, class `Invoice`, table `invoices`, URL `/api/v1/invoices`, tag
`invoices`; `line_item` → `line_items`, `LineItem`, `line_items`, `/api/v1/line-items`. Every
derived name can be overridden; an override follows the same rules as a derived one.
"""

from __future__ import annotations

import keyword
import re
from typing import Final

from backforge.errors import UsageError
from backforge.resources.sql_words import reserved_by

SNAKE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
CLASS: Final = re.compile(r"^[A-Z][A-Za-z0-9]*$")
URL: Final = re.compile(r"^[a-z][a-z0-9-]*$")
TAG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")
IDENTIFIER_LIMIT: Final = 63
"""PostgreSQL's identifier limit (MySQL's is 64): a table name and the index and constraint names
built from it must fit."""
NAME_LIMIT: Final = 40
"""A resource's singular name, plural and table name are at most this long."""

_VOWELS: Final = frozenset("aeiou")


def plural_of(name: str) -> str:
    """Simple English: `y` → `ies` after a consonant, `s/x/z/ch/sh` → `es`, else `s`."""
    if name.endswith("y") and len(name) > 1 and name[-2] not in _VOWELS:
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    return name + "s"


def class_name_of(name: str) -> str:
    """CamelCase of a snake_case name: `line_item` → `LineItem`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def url_of(plural: str) -> str:
    """The URL path segment of a plural: `line_items` → `line-items`."""
    return plural.replace("_", "-")


def check_snake(what: str, value: str, *, limit: int = NAME_LIMIT, sql: bool = True) -> None:
    """Raise UsageError naming `what` unless `value` is a usable snake_case Python and SQL name."""
    if not SNAKE.match(value) or "__" in value or value.endswith("_"):
        raise UsageError(
            f"{what} {value!r} is not snake_case: it must match ^[a-z][a-z0-9_]*$ (a lower case "
            "letter, then lower case letters, digits or single underscores, not ending with one)"
        )
    if len(value) > limit:
        raise UsageError(f"{what} {value!r} is {len(value)} characters long; at most {limit}")
    if keyword.iskeyword(value):
        raise UsageError(f"{what} {value!r} is a Python keyword; choose another name")
    if sql:
        databases = reserved_by(value)
        if databases:
            raise UsageError(
                f"{what} {value!r} is an SQL reserved word ({', '.join(databases)}); choose "
                "another name (e.g. a more specific one)"
            )


def check_class_name(value: str) -> None:
    if not CLASS.match(value):
        raise UsageError(
            f"--class-name {value!r} must be CamelCase: ^[A-Z][A-Za-z0-9]*$ (e.g. LineItem)"
        )
    if keyword.iskeyword(value):
        raise UsageError(f"--class-name {value!r} is a Python keyword; choose another name")


def check_url(value: str) -> None:
    if not URL.match(value) or "--" in value or value.endswith("-"):
        raise UsageError(
            f"--url {value!r} must be one URL path segment matching ^[a-z][a-z0-9-]*$ (lower case "
            "letters, digits and single hyphens, not ending with one), e.g. line-items"
        )


def check_tag(value: str) -> None:
    if not TAG.match(value) or len(value) > 60:
        raise UsageError(
            f"--tag {value!r} must be 1 to 60 characters: letters, digits, spaces, '_', '.' or "
            "'-', starting with a letter or digit"
        )
