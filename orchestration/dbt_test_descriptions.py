"""What each dbt data test checks, in a sentence, for its Dagster asset check.

dagster-dbt takes a check's description from the test's `meta.description` only (0.29,
asset_utils.default_asset_check_fn), so dbt 1.11's own `description:` of a data test and
every generic test without one would read "No description provided". The description is,
in order: the test's `description:` in the yml, its `meta.description`, or a sentence made
from the generic test's name and arguments (GENERIC_TESTS), so the built-in and the
project's generic tests are described in this one place instead of on each of their uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Generic test name -> sentence over its arguments (test_metadata.kwargs, rendered by _argument).
GENERIC_TESTS = {
    "not_null": "`{column_name}` is never null.",
    "unique": "`{column_name}` is unique: no value appears twice.",
    "accepted_values": "`{column_name}` is one of {values}.",
    "relationships": "Every `{column_name}` is a `{field}` of {to}.",
    # The project's own (dbt_project/tests/generic/).
    "unique_combination_of_columns": "No two rows share the same ({columns}).",
    "row_count_matches": "As many rows as {compare_model}: no row dropped or added.",
    "expression_is_true": "Every row satisfies `{expression}`.",
}
_REF = re.compile(r"""ref\(\s*['"]([^'"]+)['"]\s*\)""")
_JINJA = re.compile(r"^\{\{\s*(.*?)\s*\}\}$", re.S)


def _argument(value: Any) -> str:
    """A test argument as a reader would write it: refs as model names, lists joined, the
    Jinja of a var-driven list as its expression (`var('reason_codes')`)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{item}`" if isinstance(item, str) else str(item).lower() for item in value)
    text = " ".join(str(value).split())  # one line: a SQL expression may span several
    if (jinja := _JINJA.match(text)) is not None:
        return f"`{jinja.group(1)}`"
    return _REF.sub(lambda ref: f"`{ref.group(1)}`", text)


def describe_dbt_test(test: Mapping[str, Any]) -> str | None:
    """The description of a dbt test node of the manifest; None for a generic test this
    module does not know and the yml does not describe."""
    own = (test.get("description") or "").strip() or (test.get("meta") or {}).get("description")
    if own:
        return own
    metadata = test.get("test_metadata") or {}
    template = GENERIC_TESTS.get(metadata.get("name", ""))
    if template is None:
        return None
    arguments = {name: _argument(value) for name, value in (metadata.get("kwargs") or {}).items() if name != "model"}
    sentence = template.format_map(arguments)
    config = test.get("config") or {}
    if config.get("where"):
        sentence += f" Rows where `{config['where']}`."
    if str(config.get("severity", "error")).lower() == "warn":
        sentence += " A failure warns and does not block."
    return sentence
