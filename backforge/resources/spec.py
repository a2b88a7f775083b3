"""Field specs: `name:type(args)?=default` → the field mapping the resource template takes.

Types: `str(n)` (`str` alone is `str(255)`), `text`, `int`, `decimal(p,s)`, `bool`, `date`,
`datetime`, `uuid`, `enum(a|b|...)`, `ref(resource)` / `ref(user)`. `?` makes the field optional
(nullable); `=default` gives a default, checked against the type. The mapping (the resource
template's contract): `{name, type, optional, default?, length?, precision?, scale?, choices?,
target?}`; a default is an int for `int`, a bool for `bool`, and a string for every other type
(a decimal with exactly `scale` digits after the point, a date `YYYY-MM-DD`, a datetime in ISO
8601 with its UTC offset, a UUID in its canonical form).
"""

from __future__ import annotations

import keyword
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from backforge.errors import UsageError
from backforge.resources.naming import check_snake

TYPES: Final = ("str", "text", "int", "decimal", "bool", "date", "datetime", "uuid", "enum", "ref")
SEARCHABLE: Final = frozenset({"str", "text"})
"""Field types that `q` searches (`--search`)."""
SORTABLE: Final = frozenset({"str", "int", "decimal", "bool", "date", "datetime", "enum"})
"""Field types a list can be sorted by (`--sort`); `created_at` is always sortable."""
RESERVED_FIELDS: Final = frozenset(
    {"id", "created_at", "updated_at", "owner_id", "organization_id", "metadata", "registry"}
)
"""Columns every resource has (or may get when a capability is switched on), and names SQLModel
classes already use."""
STR_DEFAULT_LENGTH: Final = 255
STR_MAX_LENGTH: Final = 768
"""MySQL indexes at most 3072 bytes of a column: 768 characters of utf8mb4."""
DECIMAL_MAX_PRECISION: Final = 65
DECIMAL_MAX_SCALE: Final = 30
INT_RANGE: Final = (-(2**31), 2**31 - 1)
"""`int` is a 32-bit INTEGER column on every database."""
_SPEC: Final = re.compile(
    r"^(?P<name>[^:]*):(?P<type>[A-Za-z_]*)(?:\((?P<args>[^()]*)\))?(?P<optional>\?)?"
    r"(?:=(?P<default>.*))?$",
    re.DOTALL,
)
_ENUM_CHOICE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_INTEGER: Final = re.compile(r"^[+-]?\d+$")
_DECIMAL: Final = re.compile(r"^[+-]?\d+(\.\d+)?$")
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BOOLEANS: Final = {"true": True, "false": False}


@dataclass(frozen=True)
class Field:
    """One field of a resource, as parsed from its spec."""

    name: str
    type: str
    optional: bool = False
    default: Any = None
    has_default: bool = False
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    choices: tuple[str, ...] = field(default=())
    target: str | None = None
    spec: str = ""
    """The spec as typed (for messages and listings)."""

    @property
    def column(self) -> str:
        """The column that stores the field: `<name>_id` for a reference, else the name."""
        return f"{self.name}_id" if self.type == "ref" else self.name

    def answer(self) -> dict[str, Any]:
        """The field mapping of the resource template's `fields` answer."""
        mapping: dict[str, Any] = {"name": self.name, "type": self.type, "optional": self.optional}
        if self.has_default:
            mapping["default"] = self.default
        if self.length is not None:
            mapping["length"] = self.length
        if self.precision is not None:
            mapping["precision"] = self.precision
            mapping["scale"] = self.scale
        if self.choices:
            mapping["choices"] = list(self.choices)
        if self.target is not None:
            mapping["target"] = self.target
        return mapping

    def summary(self) -> str:
        """The field as a spec again: `amount:decimal(12,2)?=0.00`."""
        return summarize(self.answer())


def summarize(mapping: Any) -> str:
    """A field mapping (from an answers file) as a spec; `?` for anything unreadable."""
    if not isinstance(mapping, dict):
        return "?"
    kind = str(mapping.get("type", "?"))
    args = ""
    if kind == "str" and "length" in mapping:
        args = f"({mapping['length']})"
    elif kind == "decimal":
        args = f"({mapping.get('precision')},{mapping.get('scale')})"
    elif kind == "enum":
        args = "(" + "|".join(str(c) for c in mapping.get("choices") or []) + ")"
    elif kind == "ref":
        args = f"({mapping.get('target')})"
    text = f"{mapping.get('name', '?')}:{kind}{args}"
    if mapping.get("optional"):
        text += "?"
    if "default" in mapping:
        value = mapping["default"]
        text += "=" + (str(value).lower() if isinstance(value, bool) else str(value))
    return text


def _int_arg(spec: str, what: str, raw: str) -> int:
    if not _INTEGER.match(raw.strip()):
        raise UsageError(f"--field {spec!r}: {what} must be a whole number, got {raw.strip()!r}")
    return int(raw)


def parse_field(spec: str) -> Field:
    """Parse one `--field` spec; UsageError naming the field and the rule when it is bad."""
    found = _SPEC.match(spec.strip())
    if not found:
        raise UsageError(
            f"--field {spec!r} must look like name:type, name:type(args), with `?` for optional "
            "and `=default` (e.g. title:str(120), notes:text?, status:enum(draft|sent)=draft)"
        )
    name, kind = found["name"].strip(), found["type"]
    args, optional, raw_default = found["args"], bool(found["optional"]), found["default"]
    if not name:
        raise UsageError(f"--field {spec!r}: the field has no name (name:type)")
    check_snake("field name", name)
    column = f"{name}_id" if kind == "ref" else name
    if column in RESERVED_FIELDS:
        what = "the name is" if column == name else f"its column {column!r} is"
        raise UsageError(
            f"field {name!r}: {what} reserved (every resource has id, created_at and "
            "updated_at, owner_id or organization_id by its scope; SQLModel uses metadata and "
            "registry); choose another"
        )
    if name.startswith("model_"):
        raise UsageError(
            f"field {name!r}: names starting with model_ are reserved by pydantic; choose another"
        )
    if kind not in TYPES:
        raise UsageError(
            f"field {name!r}: unknown type {kind!r}; the types are str(n), text, int, "
            "decimal(p,s), bool, date, datetime, uuid, enum(a|b), ref(resource|user)"
        )
    values: dict[str, Any] = {}
    if kind == "str":
        length = STR_DEFAULT_LENGTH if args is None else _int_arg(spec, "str(n)'s n", args)
        if not 1 <= length <= STR_MAX_LENGTH:
            raise UsageError(
                f"field {name!r}: str(n) needs 1 <= n <= {STR_MAX_LENGTH} (MySQL indexes at most "
                f"768 characters), got {length}; use text for longer values"
            )
        values["length"] = length
    elif kind == "decimal":
        parts = (args or "").split(",")
        if args is None or len(parts) != 2:
            raise UsageError(f"field {name!r}: decimal needs (precision,scale), e.g. decimal(12,2)")
        precision = _int_arg(spec, "decimal's precision", parts[0])
        scale = _int_arg(spec, "decimal's scale", parts[1])
        if not 1 <= precision <= DECIMAL_MAX_PRECISION:
            raise UsageError(
                f"field {name!r}: decimal(p,s) needs 1 <= p <= {DECIMAL_MAX_PRECISION}, got "
                f"p={precision}"
            )
        if not 0 <= scale <= min(precision, DECIMAL_MAX_SCALE):
            raise UsageError(
                f"field {name!r}: decimal(p,s) needs 0 <= s <= p (and s <= "
                f"{DECIMAL_MAX_SCALE}), got decimal({precision},{scale})"
            )
        values["precision"], values["scale"] = precision, scale
    elif kind == "enum":
        choices = tuple(choice.strip() for choice in (args or "").split("|"))
        if args is None or not all(choices):
            raise UsageError(f"field {name!r}: enum needs its choices, e.g. enum(draft|sent|paid)")
        for choice in choices:
            if not _ENUM_CHOICE.match(choice) or keyword.iskeyword(choice) or len(choice) > 50:
                raise UsageError(
                    f"field {name!r}: enum choice {choice!r} must match ^[a-z][a-z0-9_]*$, be at "
                    "most 50 characters and not a Python keyword"
                )
        if len(set(choices)) != len(choices):
            raise UsageError(f"field {name!r}: enum choices must be distinct, got {args!r}")
        values["choices"] = choices
    elif kind == "ref":
        target = (args or "").strip()
        if not target:
            raise UsageError(f"field {name!r}: ref needs its target, ref(user) or ref(<resource>)")
        check_snake(f"field {name!r}: ref target", target, sql=False)
        values["target"] = target
    elif args is not None:
        raise UsageError(f"field {name!r}: type {kind} takes no arguments, got {kind}({args})")
    if raw_default is not None:
        values["default"] = _default(name, kind, raw_default, values)
        values["has_default"] = True
    return Field(name=name, type=kind, optional=optional, spec=spec, **values)


def _default(name: str, kind: str, raw: str, values: dict[str, Any]) -> Any:
    """The default `raw` as the field mapping holds it, or UsageError saying why it does not fit."""

    def bad(rule: str) -> UsageError:
        return UsageError(f"field {name!r}: default {raw!r} does not fit {kind}: {rule}")

    if kind in ("str", "text"):
        if kind == "str" and len(raw) > values["length"]:
            raise bad(f"it is {len(raw)} characters long, the field at most {values['length']}")
        if "\0" in raw:
            raise bad("it contains a NUL character")
        return raw
    if kind == "int":
        if not _INTEGER.match(raw):
            raise bad("expected a whole number such as 0 or -5")
        number = int(raw)
        if not INT_RANGE[0] <= number <= INT_RANGE[1]:
            raise bad(f"int is a 32-bit column ({INT_RANGE[0]} to {INT_RANGE[1]})")
        return number
    if kind == "decimal":
        precision, scale = values["precision"], values["scale"]
        if not _DECIMAL.match(raw):
            raise bad("expected a number such as 12.50")
        try:
            amount = Decimal(raw).quantize(Decimal(1).scaleb(-scale))
        except InvalidOperation as exc:
            raise bad(f"it does not fit decimal({precision},{scale})") from exc
        if amount != Decimal(raw):
            raise bad(f"it has more than {scale} digits after the point")
        if abs(amount) >= Decimal(10) ** (precision - scale):
            raise bad(
                f"decimal({precision},{scale}) holds at most {precision - scale} digits "
                "before the point"
            )
        return f"{amount:f}"
    if kind == "bool":
        if raw not in _BOOLEANS:
            raise bad("expected true or false")
        return _BOOLEANS[raw]
    if kind == "date":
        try:
            if not _DATE.match(raw):
                raise ValueError(raw)
            return date.fromisoformat(raw).isoformat()
        except ValueError as exc:
            raise bad("expected a real date as YYYY-MM-DD, such as 2024-12-31") from exc
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise bad("expected ISO 8601 with a UTC offset, such as 2024-12-31T09:30:00Z") from exc
        if moment.tzinfo is None:
            raise bad("it has no UTC offset; add Z or +HH:MM (the column stores UTC)")
        return moment.isoformat()
    if kind == "uuid":
        try:
            return str(uuid.UUID(raw))
        except ValueError as exc:
            raise bad("expected a UUID such as 123e4567-e89b-12d3-a456-426614174000") from exc
    if kind == "enum":
        if raw not in values["choices"]:
            raise bad(f"it is not one of the choices {'|'.join(values['choices'])}")
        return raw
    raise bad("a ref has no default")
