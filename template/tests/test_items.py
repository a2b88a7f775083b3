import csv
import io
import uuid
from typing import Any

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.anyio

ITEMS = "/api/v1/items"


async def create(client: AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(ITEMS, json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_read_update_delete(client: AsyncClient) -> None:
    created = await create(client, "  Widget  ", description="A small widget")
    assert created["name"] == "Widget"
    assert uuid.UUID(created["id"])
    assert created["created_at"].endswith(("Z", "+00:00"))

    fetched = await client.get(f"{ITEMS}/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    patched = await client.patch(f"{ITEMS}/{created['id']}", json={"description": None})
    assert patched.status_code == 200
    assert patched.json()["description"] is None
    assert patched.json()["name"] == "Widget"
    assert patched.json()["updated_at"] >= created["updated_at"]

    renamed = await client.patch(f"{ITEMS}/{created['id']}", json={"name": "Gadget"})
    assert renamed.json()["name"] == "Gadget"

    deleted = await client.delete(f"{ITEMS}/{created['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"{ITEMS}/{created['id']}")).status_code == 404


async def test_missing_item_is_404_problem(client: AsyncClient) -> None:
    missing = uuid.uuid4()
    for response in (
        await client.get(f"{ITEMS}/{missing}"),
        await client.patch(f"{ITEMS}/{missing}", json={"name": "x"}),
        await client.delete(f"{ITEMS}/{missing}"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert str(missing) in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "x" * 121}, "body.name"),
        ({"name": "ok", "description": "x" * 1001}, "body.description"),
        ({"name": "ok", "owner": "someone"}, "body.owner"),
        ({"name": 12}, "body.name"),
    ],
)
async def test_invalid_create_names_the_field(
    client: AsyncClient, payload: dict[str, Any], field: str
) -> None:
    response = await client.post(ITEMS, json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]


async def test_patch_rejects_null_name_and_unknown_fields(client: AsyncClient) -> None:
    item = await create(client, "Keep")
    null_name = await client.patch(f"{ITEMS}/{item['id']}", json={"name": None})
    assert null_name.status_code == 422
    unknown = await client.patch(f"{ITEMS}/{item['id']}", json={"id": str(uuid.uuid4())})
    assert unknown.status_code == 422
    assert (await client.get(f"{ITEMS}/{item['id']}")).json()["name"] == "Keep"


async def test_an_id_that_is_no_uuid_is_404(client: AsyncClient) -> None:
    response = await client.get(f"{ITEMS}/not-a-uuid")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_list_paginates_with_total(client: AsyncClient) -> None:
    for index in range(5):
        await create(client, f"item-{index}")
    first = (await client.get(ITEMS, params={"limit": 2, "sort": "name"})).json()
    assert first["total"] == 5
    assert (first["limit"], first["offset"]) == (2, 0)
    assert [item["name"] for item in first["items"]] == ["item-0", "item-1"]
    last = (await client.get(ITEMS, params={"limit": 2, "offset": 4, "sort": "name"})).json()
    assert [item["name"] for item in last["items"]] == ["item-4"]
    default = (await client.get(ITEMS)).json()
    assert default["limit"] == 20
    assert len(default["items"]) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"offset": 2**40},
        {"sort": "password"},
        {"q": ""},
        {"limit": "many"},
    ],
)
async def test_bad_list_parameters_are_422(client: AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get(ITEMS, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_sort_orders(client: AsyncClient) -> None:
    for name in ("banana", "apple", "cherry"):
        await create(client, name)

    async def names(sort: str) -> list[str]:
        body = (await client.get(ITEMS, params={"sort": sort})).json()
        return [item["name"] for item in body["items"]]

    assert await names("name") == ["apple", "banana", "cherry"]
    assert await names("-name") == ["cherry", "banana", "apple"]
    assert await names("created_at") == ["banana", "apple", "cherry"]
    assert await names("-created_at") == ["cherry", "apple", "banana"]


async def test_search_is_case_insensitive_and_escapes_wildcards(client: AsyncClient) -> None:
    await create(client, "Blue Widget")
    await create(client, "red widget")
    await create(client, "100% cotton")
    await create(client, "1000 cotton")
    widgets = (await client.get(ITEMS, params={"q": "WIDGET", "sort": "name"})).json()
    assert [item["name"] for item in widgets["items"]] == ["Blue Widget", "red widget"]
    assert widgets["total"] == 2
    percent = (await client.get(ITEMS, params={"q": "0%"})).json()
    assert [item["name"] for item in percent["items"]] == ["100% cotton"]
    underscore = (await client.get(ITEMS, params={"q": "_"})).json()
    assert underscore["total"] == 0


async def test_export_streams_every_item_as_csv(client: AsyncClient) -> None:
    names = [f"row {index:03d}" for index in range(120)]
    for name in names:
        await create(client, name, description='quote " and, comma')
    response = await client.get(f"{ITEMS}/export.csv", params={"sort": "name"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["name"] for row in rows] == names
    assert rows[0]["description"] == 'quote " and, comma'
    filtered = await client.get(f"{ITEMS}/export.csv", params={"q": "row 00"})
    assert len(list(csv.DictReader(io.StringIO(filtered.text)))) == 10


async def test_export_of_nothing_is_just_the_header(client: AsyncClient) -> None:
    response = await client.get(f"{ITEMS}/export.csv")
    assert response.text.strip() == "id,name,description,created_at,updated_at"
