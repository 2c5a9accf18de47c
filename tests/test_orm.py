"""Models SQLAlchemy mapped, edited while the program holds rows of them, on both cores.

A class statement that runs again makes a second class.  For a mapped model,
SQLAlchemy registered it by name, then refused it ("Table 'items' is already
defined"): every later query that named the model failed ("Multiple classes
found"), the failed edit half applied for good.  Now a model's methods are
set on the live class, and any other edit of it is refused before it runs.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any

import pytest

from tests.conftest import Project
from tests.test_incremental import fresh

pytest.importorskip("sqlalchemy")

DB = """\
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from models import Base, Item, Order

engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)
session.add(Item(name="lamp", price=3))
session.commit()
"""

MODELS = textwrap.dedent(
    """\
    from sqlalchemy import ForeignKey, Integer, String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


    class Base(DeclarativeBase):
        pass


    class Item(Base):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        price: Mapped[int] = mapped_column(Integer, default=0)
    {columns}
        def label(self):
            return "{label}:" + self.name
    {methods}

    class Order(Base):
        __tablename__ = "orders"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
        item: Mapped["Item"] = relationship("Item")
    """
)

SHOUT = """
    @property
    def shout(self):
        return self.name.upper() + "{mark}"

    def __repr__(self):
        return "<" + super().__repr__().split(" ")[0] + ">"
"""


def models(label: str = "L1", methods: str = "", columns: str = "") -> str:
    return MODELS.format(label=label, methods=methods, columns=columns)


def _query(db: Any, models_module: Any) -> Any:
    from sqlalchemy import select

    return db.session.scalars(select(models_module.Item)).one()


def test_methods_added_to_a_model_apply_to_the_live_class(project: Project, hmr: Any) -> None:
    project.write("models.py", models())
    project.write("db.py", DB)
    models_module, db = fresh(hmr, "models", "db")
    item_class, mapper = models_module.Item, models_module.Item.__mapper__
    lamp = _query(db, models_module)
    assert lamp.label() == "L1:lamp"

    project.write("models.py", models(label="L2", methods=SHOUT.format(mark="!")))
    result = hmr.reload("models")

    assert (result.reloaded, dict(result.failed), result.refused) == (["models"], {}, [])
    assert models_module.Item is item_class
    assert models_module.Item.__mapper__ is mapper
    # The row loaded before the edit, and a query after it: the new methods, the same rows.
    assert (lamp.label(), lamp.shout) == ("L2:lamp", "LAMP!")
    again = _query(db, models_module)
    assert again is lamp
    assert repr(again).startswith("<<models.Item")  # super() is the live class's
    # A relationship that names the model by string still resolves (one class of the name).
    order = models_module.Order(item=lamp)
    db.session.add(order)
    db.session.commit()
    assert db.session.get(models_module.Order, order.id).item is lamp
    # A later edit of the added method, then its removal.
    project.write("models.py", models(label="L2", methods=SHOUT.format(mark="?")))
    assert hmr.reload("models").reloaded == ["models"]
    assert lamp.shout == "LAMP?"
    project.write("models.py", models(label="L3"))
    assert hmr.reload("models").reloaded == ["models"]
    assert not hasattr(lamp, "shout")
    assert lamp.label() == "L3:lamp"


@pytest.mark.parametrize(
    ("columns", "what"),
    [
        ("    color: Mapped[str] = mapped_column(String(20), default='red')\n", "gained color"),
        ('    __table_args__ = {"sqlite_autoincrement": True}\n', "gained __table_args__"),
        ("default=5", "changed price"),
    ],
    ids=["column", "table-args", "column-changed"],
)
def test_a_model_edit_beyond_its_methods_is_refused_before_it_runs(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, columns: str, what: str
) -> None:
    project.write("models.py", models())
    project.write("db.py", DB)
    models_module, db = fresh(hmr, "models", "db")
    lamp = _query(db, models_module)

    edited = models(label="L2", methods=SHOUT.format(mark="!"))
    if columns == "default=5":
        edited = edited.replace("default=0", columns)
    else:
        edited = models(label="L2", methods=SHOUT.format(mark="!"), columns=columns)
    project.write("models.py", edited)
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        result = hmr.reload("models")

    # The line of the member it names.
    member = what.rsplit(maxsplit=1)[-1]
    line = next(
        at for at, text in enumerate(edited.splitlines(), 1) if text.strip().startswith(member)
    )
    assert [str(refusal) for refusal in result.refused] == [
        f"restart to apply: models.Item {what} at {models_module.__file__}:{line} "
        "(sqlalchemy model); its mapping is made once; a migration may be needed"
    ]
    assert caplog.messages == [str(result.refused[0])]
    # Nothing of the edit applies, and SQLAlchemy knows one Item still.
    assert lamp.label() == "L1:lamp"
    assert not hasattr(lamp, "shout")
    order = models_module.Order(item=lamp)
    db.session.add(order)
    db.session.commit()
    assert _query(db, models_module) is lamp
    # Put back without the column: the methods apply.
    project.write("models.py", models(label="L2", methods=SHOUT.format(mark="!")))
    assert hmr.reload("models").reloaded == ["models"]
    assert lamp.shout == "LAMP!"


LOOP = """\
import sys
import time

import db
import models

while True:
    lamp = db.session.get(models.Item, 1)
    shout = getattr(lamp, "shout", "-")
    sys.stdout.write(f"tick {lamp.label()} {shout} rows={db.session.query(models.Item).count()}\\n")
    sys.stdout.flush()
    time.sleep(0.02)  # pacing only: the test waits for lines
"""


def test_a_program_querying_a_model_runs_its_new_methods_after_a_save(
    proj: Any, spawn: Any
) -> None:
    """Through the CLI and its watcher, as a user works: a property added to a model
    while the program queries it; then a column, refused in one line, the program on."""
    from tests.subprocesses import starts, write

    write(proj / "models.py", models())
    write(proj / "db.py", DB)
    write(proj / "main.py", LOOP)
    child = spawn(["main.py"], cwd=proj)
    child.expect("tick L1:lamp - rows=1")

    write(proj / "models.py", models(label="L2", methods=SHOUT.format(mark="!")))
    child.expect("tick L2:lamp LAMP! rows=1")
    child.expect(starts("hmr: reloaded models"), stream="err")

    column = "    color: Mapped[str] = mapped_column(String(20), default='red')\n"
    write(proj / "models.py", models(label="L3", methods=SHOUT.format(mark="!"), columns=column))
    child.expect(starts("hmr: restart to apply: models.Item gained color"), stream="err")
    assert "tick L2:lamp LAMP! rows=1" in child.expect(starts("tick "))
    assert child.proc.poll() is None


def test_a_method_added_to_the_declarative_base_reaches_every_model(
    project: Project, hmr: Any
) -> None:
    """The base's class statement run again would make a second registry and MetaData
    (the models' tables in the first): its methods are set on the live base instead."""
    project.write("models.py", models())
    project.write("db.py", DB)
    models_module, db = fresh(hmr, "models", "db")
    base, metadata, lamp = (
        models_module.Base,
        models_module.Base.metadata,
        _query(db, models_module),
    )
    method = "class Base(DeclarativeBase):\n    def describe(self):\n        return f'#{self.id}'"
    project.write("models.py", models().replace("class Base(DeclarativeBase):\n    pass", method))

    result = hmr.reload("models")

    assert (result.reloaded, [str(each) for each in result.refused]) == (["models"], [])
    assert (models_module.Base, models_module.Base.metadata) == (base, metadata)
    assert lamp.describe() == "#1"
    assert _query(db, models_module) is lamp


def test_a_method_whose_decorator_comes_with_a_new_import_applies(
    project: Project, hmr: Any
) -> None:
    """The import line is new in the same save: the class read a name that changed, which
    was refused, and every later save of the file with it (the process needed a restart)."""
    project.write("models.py", models())
    project.write("db.py", DB)
    models_module, db = fresh(hmr, "models", "db")
    lamp = _query(db, models_module)
    hybrid = "\n    @hybrid_property\n    def loud(self):\n        return self.name + '{mark}'\n"
    source = "from sqlalchemy.ext.hybrid import hybrid_property\n" + models(
        methods=hybrid.format(mark="!")
    )
    project.write("models.py", source)
    result = hmr.reload("models")
    assert (result.reloaded, [str(each) for each in result.refused]) == (["models"], [])
    assert lamp.loud == "lamp!"
    project.write("models.py", source.replace("'!'", "'?'"))
    assert hmr.reload("models").reloaded == ["models"]
    assert lamp.loud == "lamp?"


def test_a_method_whose_decorator_names_another_member_of_the_model_applies(
    project: Project, hmr: Any
) -> None:
    """SQLAlchemy 2.0's way to give a hybrid a setter: ``@name.inplace.setter`` on a
    method of another name.  The decorator reads the class's ``name``, as the class
    statement's body would (it raised NameError, for every later save of the file)."""
    hybrid = "\n    @hybrid_property\n    def title(self):\n        return self.name.title()\n"
    setter = (
        "\n    @title.inplace.setter\n    def _title_setter(self, value):\n"
        "        self.name = value.lower(){more}\n"
    )
    head = "from sqlalchemy.ext.hybrid import hybrid_property\n"
    project.write("models.py", head + models(methods=hybrid))
    project.write("db.py", DB)
    models_module, db = fresh(hmr, "models", "db")
    lamp = _query(db, models_module)
    assert lamp.title == "Lamp"

    project.write("models.py", head + models(methods=hybrid + setter.format(more="")))
    result = hmr.reload("models")
    assert (result.reloaded, dict(result.failed), result.refused) == (["models"], {}, [])
    lamp.title = "DESK"
    assert (lamp.name, lamp.title) == ("desk", "Desk")
    project.write("models.py", head + models(methods=hybrid + setter.format(more=" + '!'")))
    assert hmr.reload("models").reloaded == ["models"]
    lamp.title = "CHAIR"
    assert lamp.name == "chair!"


def test_a_validator_added_to_a_model_is_refused_as_the_mapper_reads_it_once(
    project: Project, hmr: Any
) -> None:
    """``@validates`` (or ``@reconstructor``) is read as the class is mapped: set on the
    live class later, it never ran, and the reload said "reloaded".  Refused; an edit
    of the validator's body, once mapped, applies."""
    head = "from sqlalchemy.orm import validates\n"
    check = (
        "\n    @validates('name')\n    def _check_name(self, key, value):\n"
        "        return value.strip(){more}\n"
    )
    project.write("models.py", head + models())
    project.write("db.py", DB)
    models_module, _db = fresh(hmr, "models", "db")
    project.write("models.py", head + models(label="L2", methods=check.format(more="")))
    result = hmr.reload("models")
    assert [str(each) for each in result.refused] == [
        f"restart to apply: models.Item changed its mapper hooks (_check_name) at "
        f"{models_module.__file__}:20 (sqlalchemy model); its mapping is made once"
    ]
    assert models_module.Item(name=" desk ").name == " desk "
    assert models_module.Item(name="x").label() == "L1:x"  # nothing of it applied


def test_an_edit_of_a_mapped_validators_body_applies(project: Project, hmr: Any) -> None:
    head = "from sqlalchemy.orm import validates\n"
    check = (
        "\n    @validates('name')\n    def _check_name(self, key, value):\n"
        "        return value.strip(){more}\n"
    )
    project.write("models.py", head + models(methods=check.format(more="")))
    project.write("db.py", DB)
    models_module, _db = fresh(hmr, "models", "db")
    assert models_module.Item(name=" desk ").name == "desk"
    project.write("models.py", head + models(methods=check.format(more=".title()")))
    assert hmr.reload("models").reloaded == ["models"]
    assert models_module.Item(name=" desk ").name == "Desk"


def test_a_method_removed_from_a_model_alone_goes_from_the_live_class(
    project: Project, hmr: Any
) -> None:
    """Only a removal (no method added or edited in the same save): it failed with
    "empty body on ClassDef", no file or line, and the method stayed.  A validator
    removed is a mapper hook changed: refused."""
    head = "from sqlalchemy.orm import validates\n"
    check = (
        "\n    @validates('name')\n    def _check_name(self, key, value):\n        return value\n"
    )
    project.write("models.py", head + models(methods=SHOUT.format(mark="!") + check))
    project.write("db.py", DB)
    models_module, db = fresh(hmr, "models", "db")
    lamp = _query(db, models_module)
    assert lamp.shout == "LAMP!"
    project.write("models.py", head + models(methods=check))
    result = hmr.reload("models")
    assert (result.reloaded, dict(result.failed), result.refused) == (["models"], {}, [])
    assert not hasattr(lamp, "shout")
    project.write("models.py", head + models())
    result = hmr.reload("models")
    assert [str(each) for each in result.refused] == [
        f"restart to apply: models.Item changed its mapper hooks (_check_name) at "
        f"{models_module.__file__}:10 (sqlalchemy model); its mapping is made once"
    ]
