"""Loader errors: one test per kind of mistake, each asserting file:line:column and the field path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.actions import ActionRegistry
from engine.errors import DefinitionError, Problem
from engine.loader import Loader

GOOD = """
apiVersion: runbook/v1
kind: Runbook
metadata:
  name: toy-fix
  title: Fix the toy
params:
  key:
    type: string
    required: true
steps:
  - id: look
    title: Look
    action: toy.get
    with:
      key: "{{ params.key }}"
  - id: fix
    title: Fix
    action: toy.set
    when: steps.look.output.value != 'ok'
    with:
      key: "{{ params.key }}"
      value: ok
"""

Write = Callable[[str, str], Path]


def problems(loader: Loader, path: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        loader.load_file(path)
    return caught.value.problems


def only(loader: Loader, path: Path) -> Problem:
    found = problems(loader, path)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_good_runbook_loads_into_a_frozen_model(loader: Loader, write: Write) -> None:
    runbook = loader.load_file(write(GOOD))
    assert runbook.name == "toy-fix"
    assert [s.id for s in runbook.steps] == ["look", "fix"]
    assert runbook.steps[1].with_ == {"key": "{{ params.key }}", "value": "ok"}
    with pytest.raises(ValueError, match="frozen"):
        runbook.steps[0].title = "changed"  # type: ignore[misc]


def test_invalid_yaml_names_line_and_column(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("    title: Look\n", "    title: [Look\n"))
    problem = problems(loader, path)[0]
    assert problem.file == str(path)
    assert problem.line >= 12 and "invalid YAML" in problem.message


def test_missing_field(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("  title: Fix the toy\n", ""))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (4, 3, "metadata.title")
    assert problem.message == "field required"
    assert str(problem) == f"{path}:4:3 metadata.title: field required"


def test_unknown_key_suggests_the_right_one(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("    title: Fix\n", "    title: Fix\n    on_failur: continue\n"))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (18, 5, "steps[1].on_failur")
    assert "unknown key" in problem.message and "did you mean 'on_failure'" in problem.message


def test_duplicate_step_ids(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("  - id: fix\n", "  - id: look\n").replace("steps.look.output", "params.key"))
    problem = only(loader, path)
    assert (problem.line, problem.path) == (16, "steps[1].id")
    assert "duplicate step id 'look'" in problem.message


def test_unknown_action(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("action: toy.get", "action: toy.gte"))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (13, 13, "steps[0].action")
    assert "unknown action 'toy.gte'" in problem.message and "did you mean 'toy.get'" in problem.message


def test_when_that_does_not_compile(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("when: steps.look.output.value != 'ok'", "when: steps.look.output.value !="))
    problem = only(loader, path)
    assert (problem.line, problem.path) == (19, "steps[1].when")
    assert problem.message.startswith("condition does not compile")


def test_template_that_does_not_compile(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace('      key: "{{ params.key }}"\n  - id: fix', '      key: "{{ params.key "\n  - id: fix'))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (15, 12, "steps[0].with.key")
    assert problem.message.startswith("template does not compile")


def test_reference_to_a_later_step(loader: Loader, write: Write) -> None:
    later = '      key: "{{ steps.fix.output }}"\n  - id: fix'
    path = write(GOOD.replace('      key: "{{ params.key }}"\n  - id: fix', later))
    problem = only(loader, path)
    assert problem.path == "steps[0].with.key"
    assert "refers to step 'fix', which runs later" in problem.message


def test_reference_to_an_unknown_step(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("when: steps.look.output", "when: steps.lok.output"))
    problem = only(loader, path)
    assert problem.path == "steps[1].when"
    assert "unknown step 'lok'" in problem.message and "did you mean 'look'" in problem.message


def test_reference_to_an_undeclared_param(loader: Loader, write: Write) -> None:
    typo = '      key: "{{ params.kye }}"\n      value'
    path = write(GOOD.replace('      key: "{{ params.key }}"\n      value', typo))
    problem = only(loader, path)
    assert (problem.line, problem.path) == (21, "steps[1].with.key")
    assert "undeclared param 'kye'" in problem.message and "did you mean 'key'" in problem.message


def test_param_without_a_type(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("    type: string\n", ""))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (8, 5, "params.key.type")
    assert problem.message == "field required"


def test_missing_action_argument(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("      value: ok\n", ""))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (21, 7, "steps[1].with.value")
    assert problem.message == "field required"


def test_unknown_action_argument(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("      value: ok\n", "      value: ok\n      vlaue: ok\n"))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (23, 7, "steps[1].with.vlaue")
    assert "did you mean 'value'" in problem.message


def test_literal_argument_of_the_wrong_type(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("      value: ok\n", "      value: [1, 2]\n"))
    problem = only(loader, path)
    assert problem.path == "steps[1].with.value" and "valid string" in problem.message


def test_duplicate_yaml_key(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("    title: Look\n", "    title: Look\n    title: Look again\n"))
    problem = only(loader, path)
    assert (problem.line, problem.column, problem.path) == (13, 5, "steps[0].title")
    assert problem.message == "duplicate key"


def test_private_attribute_access_is_refused_at_load(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("value: ok", "value: \"{{ params.key.__class__ }}\""))
    problem = only(loader, path)
    assert "private attributes are not allowed" in problem.message


def test_bad_runbook_name(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("name: toy-fix", "name: Toy_Fix"))
    problem = only(loader, path)
    assert (problem.line, problem.path) == (4, "metadata.name")


def test_trigger_mapping_to_an_undeclared_param(loader: Loader, write: Write) -> None:
    path = write(GOOD + "triggers:\n  alerts:\n    - match: {alertname: ToyBroken}\n      params: {kye: key}\n")
    found = problems(loader, path)
    messages = {p.path: p.message for p in found}
    assert "undeclared param 'kye'" in messages["triggers.alerts[0].params.kye"]
    assert "required param 'key' is not mapped" in messages["triggers.alerts[0].params"]


def test_every_problem_is_reported_not_just_the_first(loader: Loader, write: Write) -> None:
    text = GOOD.replace("action: toy.get", "action: nope").replace("when: steps.look", "when: steps.nothing")
    assert len(problems(loader, write(text))) == 2


def test_remediation_proposal_only_on_remediate_actions(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("    action: toy.get\n", "    action: toy.get\n    proposal: {risk: low}\n"))
    problem = only(loader, path)
    assert problem.path == "steps[0].proposal" and "only applies to remediate actions" in problem.message


def test_a_broken_rehearsal_case_never_disables_the_runbook_where_it_runs(registry: ActionRegistry,
                                                                          write: Write) -> None:
    text = GOOD + "tests:\n  - {name: moved, scenario: scenarios/gone.yaml, params: {key: a}}\n"
    path = write(text)
    assert "scenario file 'scenarios/gone.yaml' not found" in only(Loader(registry), path).message
    assert Loader(registry, check_tests=False).load_file(path).name == "toy-fix"


def test_a_remediation_may_not_continue_on_failure(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("      value: ok\n", "      value: ok\n    on_failure: continue\n"))
    problem = only(loader, path)
    assert problem.path == "steps[1].on_failure" and "cannot 'continue' on failure" in problem.message


def test_a_default_must_fit_its_param(loader: Loader, write: Write) -> None:
    path = write(GOOD.replace("    required: true\n", "    default: Not A Node!\n    pattern: '^[a-z-]+$'\n"))
    problem = only(loader, path)
    assert problem.path == "params.key.default" and "does not match the pattern" in problem.message
