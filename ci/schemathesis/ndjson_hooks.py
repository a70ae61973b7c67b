"""schemathesis hooks for ci/contract-fuzz.sh: every line of an application/x-ndjson answer (a
server stream over REST) must conform to the line schema the OpenAPI document gives for it.
schemathesis itself has no NDJSON reader, so without this a stream's body is not checked."""
import json
import os

import jsonschema_rs
import requests
import schemathesis

_validators = {}


def _document():
    doc = _validators.get("doc")
    if doc is None:
        doc = requests.get(os.environ["FUZZ_DOCUMENT"], timeout=30).json()
        _validators["doc"] = doc
    return doc


def _validator(path, method, status):
    key = (path, method, status)
    if key not in _validators:
        doc = _document()
        responses = doc["paths"][path][method.lower()]["responses"]
        response = responses.get(str(status)) or responses["default"]
        if "$ref" in response:
            response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        schema = response["content"]["application/x-ndjson"]["schema"]
        # The line schema with the document's components beside it, so its $refs resolve.
        root = {"components": doc["components"], **schema}
        _validators[key] = jsonschema_rs.Draft202012Validator(root)
    return _validators[key]


@schemathesis.check
def ndjson_lines_conform(ctx, response, case):
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/x-ndjson"):
        return None
    validator = _validator(case.operation.path, case.operation.method, response.status_code)
    for i, line in enumerate(response.content.decode("utf-8").split("\n")):
        if not line.strip():
            continue
        errors = list(validator.iter_errors(json.loads(line)))
        if errors:
            raise AssertionError(f"NDJSON line {i} does not conform: {errors[0].message}: {line[:300]}")
    return None
