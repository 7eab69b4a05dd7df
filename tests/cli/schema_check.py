#!/usr/bin/python3
"""Validate peerscope topology reports against docs/topology.schema.json.

As a module:   errors = schema_check.check_file(path)   # [] when valid
As a command:  /usr/bin/python3 tests/cli/schema_check.py FILE...
               prints "FILE: ok" or one "FILE: PATH: MESSAGE" line per problem;
               exits 0 when every file is valid, 1 when one is not, 2 on usage errors.

The JSON is read as strictly as peerscope's reader reads it: duplicate keys, NaN and
Infinity are errors. Rules the schema cannot state (gpus[i].index == i, every directed
pair exactly once) are left to peerscope's reader.
"""
import json
import pathlib
import sys

from jsonschema import Draft202012Validator

SCHEMA_PATH = pathlib.Path(__file__).resolve().parents[2] / "docs" / "topology.schema.json"

_validator = None


def validator():
    """The Draft 2020-12 validator for the topology schema (the schema itself checked once)."""
    global _validator
    if _validator is None:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        _validator = Draft202012Validator(schema)
    return _validator


def json_path(parts):
    """["gpus", 2, "name"] -> "gpus[2].name" (the C reader's spelling)."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += "[%d]" % part
        else:
            text += ("." if text else "") + str(part)
    return text or "(document)"


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("duplicate key '%s'" % key)
        seen[key] = value
    return seen


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def loads(text):
    """Parses JSON text strictly; raises ValueError (json.JSONDecodeError has line/column)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def errors(doc):
    """Schema violations of a parsed document as "path: message" strings, in path order."""
    found = sorted(validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return ["%s: %s" % (json_path(e.absolute_path), e.message) for e in found]


def check_file(path):
    """Problems with one file as "path: message" strings; [] when it is a valid report."""
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return ["(file): %s" % exc]
    try:
        doc = loads(text)
    except json.JSONDecodeError as exc:
        return ["(json):%d:%d: %s" % (exc.lineno, exc.colno, exc.msg)]
    except ValueError as exc:
        return ["(json): %s" % exc]
    return errors(doc)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: schema_check.py FILE...", file=sys.stderr)
        return 2
    status = 0
    for path in argv:
        problems = check_file(path)
        if problems:
            status = 1
            for problem in problems:
                print("%s: %s" % (path, problem))
        else:
            print("%s: ok" % path)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
