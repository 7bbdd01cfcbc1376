"""Statuses and their groups are defined once, in calls/vocabulary.py: no other module lists a
group of call statuses, and no template lists statuses (they ask the model, `call.is_settled`)."""

import re
from pathlib import Path

import calls

CALLS = Path(calls.__file__).parent
TEMPLATES = CALLS.parent / "templates"
# A bracketed list of two or more call statuses, however it names them.
STATUS = r"(?:CallStatus|CallLog\.Status|self\.Status|\bS)\.[A-Z_]+"
GROUP = re.compile(rf"[(\[{{]\s*{STATUS}\s*,\s*(?:\*?\w+\s*,\s*)*{STATUS}")
# `status in "a b"` or `status in 'a'`: a template's list of statuses.
TEMPLATE_LIST = re.compile(r"status\s+(?:not\s+)?in\s+[\"']")


def test_no_module_but_the_vocabulary_lists_a_group_of_call_statuses():
    listed = [
        f"{path.relative_to(CALLS)}: {match.group(0)}"
        for path in sorted(CALLS.rglob("*.py"))
        if path.name != "vocabulary.py" and "migrations" not in path.parts
        for match in GROUP.finditer(path.read_text())
    ]
    assert listed == []


def test_no_template_lists_statuses():
    listed = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in TEMPLATE_LIST.finditer(path.read_text())
    ]
    assert listed == []
