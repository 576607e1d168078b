"""Hostile runbook files are one clear problem for that file: alias bombs, huge files, deep nesting, too many
steps; and the catalog still loads the good runbooks next to them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.errors import DefinitionError, Problem
from engine.loader import MAX_STEPS, Loader
from engine.yaml_doc import ALIAS_BUDGET, MAX_FILE_BYTES

Write = Callable[[str, str], Path]

GOOD = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: toy-fix, title: Fix the toy}
steps:
  - {id: look, title: Look, action: toy.get, with: {key: a}}
"""


def alias_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": each level is nine aliases of the one before (9**9 values)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        name, previous = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join(f"*{previous}" for _ in range(9)) + "]")
    return "\n".join(lines) + "\n"


def only_problem(loader: Loader, path: Path) -> Problem:
    with pytest.raises(DefinitionError) as caught:
        loader.load_file(path)
    assert len(caught.value.problems) == 1, [str(p) for p in caught.value.problems]
    return caught.value.problems[0]


def test_an_alias_bomb_is_refused_without_expanding_it(loader: Loader, write: Write) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 500
    problem = only_problem(loader, write(bomb, "bomb.yaml"))
    assert problem.file.endswith("bomb.yaml") and problem.line > 1
    assert f"expand to more than {ALIAS_BUDGET} values" in problem.message


def test_a_few_aliases_still_work(loader: Loader, write: Write) -> None:
    text = GOOD.replace("with: {key: a}", "with: &args {key: a}") + \
        "  - {id: again, title: Again, action: toy.get, with: *args}\n"
    runbook = loader.load_file(write(text, "anchors.yaml"))
    assert runbook.steps[1].with_ == {"key": "a"}


def test_merge_keys_keep_their_positions_and_are_not_duplicates(loader: Loader, write: Write) -> None:
    text = GOOD.replace("  - {id: look", "  - &base {id: look") + \
        "  - {<<: *base, id: again}\n"
    runbook = loader.load_file(write(text, "merge.yaml"))
    assert [s.id for s in runbook.steps] == ["look", "again"]


def test_an_anchor_that_contains_itself_is_refused(loader: Loader, write: Write) -> None:
    problem = only_problem(loader, write("a: &a [1, *a]\n", "loop.yaml"))
    assert "nested deeper than" in problem.message


def test_deep_nesting_is_refused(loader: Loader, write: Write) -> None:
    problem = only_problem(loader, write("a: " + "[" * 500 + "]" * 500 + "\n", "deep.yaml"))
    assert problem.file.endswith("deep.yaml") and "nested deeper than" in problem.message


def test_a_huge_file_is_refused_before_it_is_parsed(loader: Loader, tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    problem = only_problem(loader, path)
    assert problem.file == str(path) and "larger than 1024 KiB" in problem.message


def test_steps_are_capped_per_runbook(loader: Loader, write: Write) -> None:
    steps = "".join(f"  - {{id: s{i}, title: S, action: toy.get, with: {{key: a}}}}\n" for i in range(MAX_STEPS + 1))
    text = GOOD.split("steps:")[0] + "steps:\n" + steps
    problem = only_problem(loader, write(text, "long.yaml"))
    assert (problem.path, problem.line) == ("steps", 5)
    assert f"{MAX_STEPS + 1} steps; a runbook may have at most {MAX_STEPS}" in problem.message
    loader.load_file(write(GOOD.split("steps:")[0] + "steps:\n" + steps.split("\n", 1)[1], "ok.yaml"))


def test_one_broken_file_disables_only_itself(loader: Loader, write: Write, tmp_path: Path) -> None:
    write(GOOD, "good.yaml")
    write(alias_bomb(), "bomb.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    catalog = Catalog.load([tmp_path], loader)
    assert list(catalog.runbooks) == ["toy-fix"]
    assert sorted(Path(p.file).name for p in catalog.problems) == ["binary.yaml", "bomb.yaml"]
    with pytest.raises(KeyError, match="2 file"):
        catalog.get("other")
