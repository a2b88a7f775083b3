"""Building blocks of every resource: the scope a service works in (app/core/scope.py: what a new
row gets, who may write, the string form an export job carries) and decimals sent as strings."""

import json
import uuid
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError

from app.core.errors import PermissionDeniedError
from app.core.scope import Scope
from app.schemas.common import DecimalText


def test_an_owner_scope_stamps_new_rows_with_the_owner() -> None:
    owner = uuid.uuid4()
    scope = Scope.owner(owner)
    assert (scope.kind, scope.id, scope.key) == ("owner", owner, str(owner))
    assert scope.stamp == {"owner_id": owner}
    scope.require_write()


def test_an_organization_scope_stamps_the_organization_and_who_made_the_row() -> None:
    organization, user = uuid.uuid4(), uuid.uuid4()
    scope = Scope.organization(organization, user_id=user)
    assert scope.stamp == {"organization_id": organization, "owner_id": user}
    assert Scope.organization(organization, user_id=None).stamp["owner_id"] is None


def test_everyone_reads_and_only_a_writable_scope_writes() -> None:
    assert Scope.everyone().key == "all"
    Scope.everyone().require_write()
    with pytest.raises(PermissionDeniedError, match="administrator"):
        Scope.everyone(writable=False).require_write()


def test_a_token_reads_back_as_a_scope_that_reads_only() -> None:
    for scope in (Scope.owner(uuid.uuid4()), Scope.everyone()):
        again = Scope.from_token(scope.token)
        assert (again.kind, again.id, again.writable) == (scope.kind, scope.id, False)


@pytest.mark.parametrize("token", ["", "all", "tenant:all", "owner:not-a-uuid"])
def test_a_token_that_names_no_scope_is_refused(token: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (ValueError is what uuid.UUID raises too)
        Scope.from_token(token)


class Price(BaseModel):
    amount: Annotated[Decimal, DecimalText(6, 2)]


@pytest.mark.parametrize("sent", ["0", "-12.5", "9999.99"])
def test_a_decimal_is_a_string_that_fits_its_digits(sent: str) -> None:
    assert Price.model_validate_json(json.dumps({"amount": sent})).amount == Decimal(sent)


@pytest.mark.parametrize("sent", [12.5, 12, "10000", "1.234", "1e3", " 1", "", None])
def test_a_decimal_that_is_no_such_string_is_refused(sent: object) -> None:
    with pytest.raises(ValidationError):
        Price.model_validate_json(json.dumps({"amount": sent}))


def test_the_decimal_rule_is_in_the_schema_and_its_value_a_string_in_json() -> None:
    schema = Price.model_json_schema()["properties"]["amount"]
    assert schema == {"type": "string", "pattern": r"^-?\d{1,4}(\.\d{1,2})?$", "title": "Amount"}
    assert DecimalText(5, 0).pattern == r"^-?\d{1,5}$"
    assert Price(amount=Decimal("1.50")).model_dump(mode="json") == {"amount": "1.50"}
