import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

T = TypeVar("T")

# Text that no column can store: NUL (PostgreSQL refuses it) and lone UTF-16 surrogates (no
# UTF-8 encoding exists; JSON can spell them as "\\ud800").
NUL = "\x00"
SURROGATES = range(0xD800, 0xE000)


def check_storable(value: str) -> str:
    """`value` unchanged, or ValueError when it holds a character no column can store."""
    if NUL in value:
        raise ValueError("contains a NUL character, which cannot be stored")
    if not value.isascii() and any(ord(char) in SURROGATES for char in value):
        raise ValueError("contains a lone surrogate, which cannot be stored")
    return value


# The rule as the OpenAPI document tells it, for text fields and parameters (a regex that ECMA,
# Python and pydantic-core read alike). Lone surrogates are not UTF-8 at all, so JSON Schema's
# strings never hold them; NUL is the character that needs saying.
NO_NUL_PATTERN = r"^[^\x00]*$"


# What a field that strips whitespace and needs a character accepts: something besides spaces.
NOT_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


def document_storable_text(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """State the text rules in the model's JSON schema (and so in the OpenAPI document)."""
    strips = bool(model.model_config.get("str_strip_whitespace"))
    for field in schema.get("properties", {}).values():
        for variant in [field, *field.get("anyOf", [])]:
            if variant.get("type") == "string" and "format" not in variant:
                needs_text = strips and variant.get("minLength", 0) > 0
                variant.setdefault("pattern", NOT_BLANK_PATTERN if needs_text else NO_NUL_PATTERN)


@dataclass(frozen=True, slots=True)
class DecimalText:
    """`Annotated[Decimal, DecimalText(12, 2)]`: a decimal of `precision` digits, `scale` of them
    after the point, sent as a JSON string ("12.50": a JSON number is a binary float, which may
    not hold the value meant), its rule stated in the schema as a pattern."""

    precision: int
    scale: int

    @property
    def pattern(self) -> str:
        whole = r"^-?\d{1," + str(self.precision - self.scale) + "}"
        fraction = r"(\.\d{1," + str(self.scale) + "})?" if self.scale else ""
        return whole + fraction + "$"

    def _text(self, value: object) -> object:
        if isinstance(value, Decimal):  # from Python (a default), not from JSON
            return value
        if not isinstance(value, str) or not re.match(self.pattern, value):
            whole, scale = self.precision - self.scale, self.scale
            raise ValueError(
                f'expected a decimal as a string such as "12.50": at most {whole} digits before '
                f"the point and {scale} after"
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        exact = core_schema.decimal_schema(max_digits=self.precision, decimal_places=self.scale)
        return core_schema.no_info_before_validator_function(self._text, exact)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": self.pattern}


class InputModel(BaseModel):
    """Base of request bodies: every text field is checked once, here, before a service sees it."""

    model_config = ConfigDict(json_schema_extra=document_storable_text)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        if isinstance(value, str):
            check_storable(value)
        return value


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, how many exist in all, and where the page starts."""

    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)

    @classmethod
    def of(cls, items: Sequence[object], *, total: int, limit: int, offset: int) -> Self:
        """The page of `items` (models read by attribute), validated in one pass."""
        page = {"items": items, "total": total, "limit": limit, "offset": offset}
        return cls.model_validate(page, from_attributes=True)
