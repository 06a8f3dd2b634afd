"""edgec.json_text: manifests, reports and --json stay JSON that strict parsers read."""

import json

from edgec.json_text import json_text


def test_non_finite_floats_become_null_everywhere_and_the_rest_is_unchanged():
    data = {"cosine": float("nan"), "rows": [{"ms": float("inf")}, (1.5, -float("inf"))]}
    text = json_text(data, indent=1)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"cosine": None, "rows": [{"ms": None}, [1.5, None]]}


def test_objects_json_cannot_hold_are_written_as_text():
    from pathlib import Path

    assert json.loads(json_text({"path": Path("a/b"), "n": 3})) == {"path": "a/b", "n": 3}
