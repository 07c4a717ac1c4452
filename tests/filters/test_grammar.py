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


def test_a_value_the_schema_lets_be_unknown_is_null():
    schema = {"type": "object", "properties": {
        "year": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "moons": {"type": ["integer", "null"]},
        "city": {"anyOf": [{"enum": ["Paris", "Rome"]}, {"type": "null"}]},
        "note": {"type": ["string", "null"]}, "count": {"type": "integer"}},
        "required": ["year", "moons", "city", "note", "count"]}
    props = json.loads(ignorant_schema(json.dumps(schema), SAY))["properties"]
    assert props["year"] == props["moons"] == props["city"] == {"type": "null"}
    assert props["note"] == {"type": "string", "const": SAY[0]}
    assert props["count"] == {"type": "integer"}  # no way to be unknown: the schema has it stated


def test_a_schema_that_only_admits_specifics_is_told_apart():
    from filters.grammar import states_specifics

    def obj(props, required=None):
        return {"type": "object", "properties": props, "required": list(props) if required is None else required}

    def specific(schema):
        return states_specifics(ignorant_schema(json.dumps(schema), SAY))

    assert specific(obj({"year": {"type": "integer"}}))
    assert specific(obj({"city": {"enum": ["Paris", "Rome"]}}))
    assert specific(obj({"answer": {"type": "boolean"}}))
    assert specific(obj({"author": {"type": "string"}, "year": {"type": "integer"}}))
    assert specific({"$defs": {"Y": obj({"year": {"type": "number"}})}, **obj({"y": {"$ref": "#/$defs/Y"}})})
    assert not specific(obj({"answer": {"type": "string"}}))
    assert not specific(obj({"year": {"type": "integer"}}, required=[]))  # left out: optional
    assert not specific(obj({"year": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}))  # null
    assert not specific(obj({"facts": {"type": "array", "items": {"type": "integer"}}}))  # may be []
    assert specific(obj({"facts": {"type": "array", "items": {"type": "integer"}, "minItems": 1}}))
    assert not states_specifics(ignorant_schema(None, SAY))  # JSON mode: {"answer": <sentence>}
