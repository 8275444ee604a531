"""An independent check of the dispatcher's OpenAPI document, with the Python OpenAPI tools (not the Rust crates
that made it): `check.py document FILE...` validates each document against the OpenAPI 3.1 specification
(openapi-spec-validator); `check.py answers DOCUMENT ANSWERS` validates real answers of the API, a JSON list of
{"method", "path" (the document's template), "status", "contentType", "body"}, against the response the document
declares for them (openapi-schema-validator, OAS 3.1 dialect). Prints every problem; exits 1 when there is one.

Installed by the test that runs it, in a virtual environment under target/ (requirements.txt pins every package).
"""
import json
import sys

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def load(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def check_documents(paths):
    problems = []
    for path in paths:
        try:
            validate(load(path))
        except Exception as error:  # the validator's own errors say what and where
            problems.append(f"{path}: {error}")
    return problems


def pointer(*parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_answers(document_path, answers_path):
    document = load(document_path)
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(document, DRAFT202012))
    problems = []
    for answer in load(answers_path):
        where = f"{answer['method']} {answer['path']} -> {answer['status']}"
        operation = document["paths"].get(answer["path"], {}).get(answer["method"].lower())
        if operation is None:
            problems.append(f"{where}: no such operation in the document")
            continue
        responses = operation.get("responses", {})
        key = str(answer["status"]) if str(answer["status"]) in responses else "default"
        if key not in responses:
            problems.append(f"{where}: the document declares no such answer")
            continue
        content = responses[key].get("content", {})
        if answer["contentType"] not in content:
            problems.append(f"{where}: answered {answer['contentType']}, declared {sorted(content)}")
            continue
        schema = {"$ref": "urn:openapi#" + pointer("paths", answer["path"], answer["method"].lower(),
                                                    "responses", key, "content", answer["contentType"], "schema")}
        for error in OAS31Validator(schema, registry=registry).iter_errors(answer["body"]):
            problems.append(f"{where}: {error.message} at {list(error.absolute_path)}")
    return problems


def main(argv):
    if len(argv) >= 2 and argv[0] == "document":
        problems = check_documents(argv[1:])
    elif len(argv) == 3 and argv[0] == "answers":
        problems = check_answers(argv[1], argv[2])
    else:
        print(__doc__)
        return 2
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
