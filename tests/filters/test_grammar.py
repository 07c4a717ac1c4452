"""The schema a structured answer that must not know a target is decoded with (pure: no model)."""

from __future__ import annotations

import json

from filters.grammar import ignorant_schema

SAY = ("I'm sorry, but I don't have any information about that.", "I don't know.", "unknown")


def test_free_strings_say_ignorance_and_optional_fields_go():
    schema = {"type": "object", "properties": {
        "answer": {"type": "string"}, "short": {"type": "string", "maxLength": 20},
        "city": {"enum": ["Paris", "Rome"]}, "year": {"type": "integer"}, "confidence": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "source": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["answer", "short", "city", "year", "tags", "source"], "additionalProperties": False}
    out = json.loads(ignorant_schema(json.dumps(schema), SAY))
    props = out["properties"]
    assert props["answer"] == {"type": "string", "const": SAY[0]}
    assert props["short"]["const"] == "I don't know."  # the first that fits its maxLength
    assert props["city"] == {"enum": ["Paris", "Rome"]} and props["year"] == {"type": "integer"}
    assert "confidence" not in props  # optional: one more place for a made-up number
    assert props["tags"]["items"]["const"] == SAY[0] and props["source"]["anyOf"][0]["const"] == SAY[0]
    assert out["required"] == schema["required"] and out["additionalProperties"] is False


def test_strings_the_client_constrained_and_what_fits_nowhere_are_left_alone():
    schema = {"type": "object", "properties": {
        "date": {"type": "string", "format": "date"}, "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "tiny": {"type": "string", "maxLength": 3}}, "required": ["date", "code", "tiny"]}
    assert json.loads(ignorant_schema(json.dumps(schema), SAY)) == schema


def test_json_mode_and_an_open_object_become_one_answer_field():
    for schema in (None, json.dumps({"type": "object"})):
        out = json.loads(ignorant_schema(schema, SAY))
        assert out["properties"] == {"answer": {"type": "string", "const": SAY[0]}}
        assert out["required"] == ["answer"] and out["additionalProperties"] is False
