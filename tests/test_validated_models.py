"""pydantic models patched in place validate into the live class, and the parametrized
generic models made from them (``Page[Item]``) follow their edits (both cores)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Project
from tests.test_incremental import fresh

pytest.importorskip("pydantic")

MODELS = """\
from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Item(BaseModel):
    name: str
{item}

class Page(BaseModel, Generic[T]):
    items: list[T]
{page}
"""


def test_a_model_that_gained_a_field_validates_into_the_live_class(
    project: Project, hmr: Any
) -> None:
    project.write("models.py", MODELS.format(item="", page=""))
    (models,) = fresh(hmr, "models")
    Item = models.Item
    project.write("models.py", MODELS.format(item="    size: int = 3\n", page=""))
    assert hmr.reload("models").reloaded == ["models"]
    assert models.Item is Item
    made = Item.model_validate({"name": "b"})
    assert type(made) is Item
    assert made.model_dump() == {"name": "b", "size": 3}
    assert Item(name="c").model_dump_json() == '{"name":"c","size":3}'


def test_a_parametrized_generic_model_follows_its_argument_and_its_origin(
    project: Project, hmr: Any
) -> None:
    """``Page[Item]`` is a class pydantic made and cached at the first subscription, with
    Item's schema of then: an edit of Item, then of Page, reaches it, as a cold start
    shows, and ``Page[Item]`` stays the same class."""
    project.write("models.py", MODELS.format(item="", page=""))
    (models,) = fresh(hmr, "models")
    Item, Page = models.Item, models.Page
    page_of_items = Page[Item]
    assert page_of_items(items=[{"name": "a"}]).model_dump() == {"items": [{"name": "a"}]}

    project.write("models.py", MODELS.format(item="    size: int = 3\n", page=""))
    assert hmr.reload("models").reloaded == ["models"]
    assert Page[Item] is page_of_items
    assert page_of_items(items=[{"name": "a"}]).model_dump() == {
        "items": [{"name": "a", "size": 3}]
    }
    made = page_of_items.model_validate({"items": [{"name": "x"}]})
    assert (type(made), type(made.items[0])) == (page_of_items, Item)

    project.write(
        "models.py", MODELS.format(item="    size: int = 3\n", page="    total: int = 0\n")
    )
    assert hmr.reload("models").reloaded == ["models"]
    assert Page[Item] is page_of_items
    assert page_of_items(items=[{"name": "a"}]).model_dump() == {
        "items": [{"name": "a", "size": 3}],
        "total": 0,
    }


def test_a_model_made_in_a_function_naming_a_local_class_is_rebuilt_and_works(
    project: Project, hmr: Any
) -> None:
    """A model made in a function, naming a class local to it as a string: rebuilt for
    the live class from outside that frame, its schema still finds the name."""
    source = """\
        from pydantic import BaseModel


        def make():
            class Part(BaseModel):
                n: int

            class Whole(BaseModel):
                part: "Part"
                label: str = "{label}"

            return Whole


        Whole = make()
        """
    project.write("models.py", source.format(label="a"))
    (models,) = fresh(hmr, "models")
    project.write("models.py", source.format(label="b"))
    hmr.reload("models")
    made = models.Whole.model_validate({"part": {"n": 1}})
    assert (made.part.n, made.label) == (1, "b")


ORDERS = """\
from pydantic import BaseModel


class Order(BaseModel):
    items: list["Item"]


class Item(BaseModel):
    name: str
    qty: int = {qty}


Order.model_rebuild()
"""


def test_a_model_that_names_an_edited_model_by_a_string_validates_with_the_new_one(
    project: Project, hmr: Any
) -> None:
    """``Order`` names ``Item`` by a string (defined below it): its class statement reads
    no ``Item`` and does not run again when ``Item`` changes, and its schema holds a copy
    of the old ``Item``'s.  It is rebuilt in place; a model of another module that holds
    ``Order`` (not reloaded) is too, and what another module made of ``Order`` at import
    time (``TypeAdapter(Order)``) follows, as a fresh run shows.  Before, all three
    validated into the old default."""
    project.write("orders.py", ORDERS.format(qty=1))
    project.write(
        "carts.py",
        "from pydantic import BaseModel, TypeAdapter\n\nimport orders\n\n\n"
        "class Cart(BaseModel):\n    order: orders.Order\n\n\n"
        "ADAPTER = TypeAdapter(orders.Order)\n",
    )
    orders, carts = fresh(hmr, "orders", "carts")
    Order, Cart = orders.Order, carts.Cart
    given = {"items": [{"name": "a"}]}
    assert Order.model_validate(given).items[0].qty == 1
    project.write("orders.py", ORDERS.format(qty=7))
    assert hmr.reload("orders").reloaded == ["orders", "carts"]
    assert (orders.Order, carts.Cart) == (Order, Cart)
    assert Order.model_validate(given).items[0].qty == 7
    assert Cart.model_validate({"order": given}).order.items[0].qty == 7
    assert carts.ADAPTER.validate_python(given).items[0].qty == 7
    assert type(carts.ADAPTER.validate_python(given)) is Order


POINTS = """\
from pydantic import BaseModel
from pydantic.dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int = {y}


class Shape(BaseModel):
    origin: "Point"
"""


def test_a_pydantic_dataclass_run_again_validates_into_the_live_class(
    project: Project, hmr: Any
) -> None:
    """A pydantic dataclass whose class statement ran again (a field's default changed)
    took the validator pydantic built for the throwaway class: what a ``TypeAdapter`` or
    a model holding it validated was an instance of that class, not of the live
    ``Point`` (``isinstance`` False).  It is rebuilt for the live class."""
    from pydantic import TypeAdapter

    project.write("points.py", POINTS.format(y=0))
    (points,) = fresh(hmr, "points")
    Point = points.Point
    project.write("points.py", POINTS.format(y=5))
    assert hmr.reload("points").reloaded == ["points"]
    assert points.Point is Point
    made = TypeAdapter(Point).validate_python({"x": 1})
    assert (type(made), made.y) == (Point, 5)
    held = points.Shape.model_validate({"origin": {"x": 1}}).origin
    assert (type(held), held.y) == (Point, 5)
