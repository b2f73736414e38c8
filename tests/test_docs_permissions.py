"""The connection page's sample RAM policy grants every action its per-task table names, and no other."""

from __future__ import annotations

import json
import re
from pathlib import Path

PAGE = Path(__file__).parents[1] / "docs" / "connection.md"
#: An action as the table names it: a code span of one CamelCase word, e.g. `GetJob`.
ACTION = re.compile(r"`((?:[A-Z][a-z]+)+)`")


def permissions_section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## RAM permissions per operation")
    following = text.find("\n## ", start + 1)
    return text[start : following if following != -1 else len(text)]


def table_actions() -> set[str]:
    rows = [line for line in permissions_section().splitlines() if line.startswith("| ") and "---" not in line]
    return {action for row in rows[1:] for action in ACTION.findall(row.split(" | ", 1)[1])}


def policy_actions() -> set[str]:
    [policy] = re.findall(r"```json\n(.*?)```", permissions_section(), flags=re.DOTALL)
    [statement] = json.loads(policy)["Statement"]
    granted = statement["Action"]
    assert all(action.startswith("stream:") for action in granted) and len(set(granted)) == len(granted)
    return {action.removeprefix("stream:") for action in granted}


def test_the_sample_policy_grants_exactly_the_actions_of_the_table() -> None:
    table = table_actions()

    assert {"GetJob", "ListSavepoints", "CreateSavepoint", "UpdateDeployment"} <= table, "the table was not read"
    assert policy_actions() - table == set(), "the policy grants actions no task calls"
    assert table - policy_actions() == set(), "the policy misses actions the table names"
