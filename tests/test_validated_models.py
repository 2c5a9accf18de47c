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
