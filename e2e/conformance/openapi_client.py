#!/usr/bin/env python3
"""Porta's agent API held to its own OpenAPI document (`/api/v1/openapi.json`).

The document must pass `openapi-spec-validator`; then requests are generated from it: for
every operation with a JSON body, a minimal valid body plus a property the schema does not
name (refused with 400, and the document must say so with `additionalProperties: false`);
`read_file` with a `limit` above the documented maximum (400); the audit export with a
format it does not offer (4xx). Every JSON answer is validated (jsonschema) against the
schema the document gives for its status.

Run with the environment `checks.py` describes.
"""

import uuid

import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from checks import SERVER, TOKEN, URL, finish, report

DOC_URI = "urn:porta:openapi"
NONCE_FILE = f"openapi-conformance-{uuid.uuid4().hex[:12]}.txt"
# Values for the properties a generated body must carry, by name; others come from their schema.
SAMPLES = {"agent_id": "openapi-conformance", "server_id": SERVER, "path": ".", "command": "ls",
           "content": "written by the OpenAPI conformance client\n", "steps": ["ls"]}
# Operations whose minimal valid body is also sent (each reads, or writes only NONCE_FILE).
HARMLESS = {"/api/v1/list_dir": {}, "/api/v1/agent/status": {}, "/api/v1/agent/list": {},
            "/api/v1/agent/history": {}, "/api/v1/write_file": {"path": NONCE_FILE},
            "/api/v1/read_file": {"path": NONCE_FILE}}

def escape(segment):
    return segment.replace("~", "~0").replace("/", "~1")


class Document:
    def __init__(self, doc):
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        scheme = next(iter(doc["components"]["securitySchemes"].values()))
        assert scheme["type"] == "apiKey" and scheme["in"] == "header", scheme
        self.headers = {scheme["name"]: TOKEN}

    def at(self, pointer):
        node = self.doc
        for part in pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node, pointer):
        """Follows a `$ref` (to this document); the node and where it is."""
        while "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            node = self.at(pointer)
        return node, pointer

    def body_schema(self, path, method):
        op = self.doc["paths"][path][method]
        return self.resolve(op["requestBody"]["content"]["application/json"]["schema"], "")[0]

    def sample(self, schema, name=None):
        schema, _ = self.resolve(schema, "")
        if name in SAMPLES:
            return SAMPLES[name]
        if "enum" in schema:
            return schema["enum"][0]
        if "oneOf" in schema:
            return self.sample(schema["oneOf"][0])
        kind = schema.get("type")
        kind = kind[0] if isinstance(kind, list) else kind
        if kind == "object":
            return {p: self.sample(schema["properties"][p], p) for p in schema.get("required", [])}
        if kind == "array":
            return [self.sample(schema["items"])] * max(1, schema.get("minItems", 1))
        return {"string": "x", "integer": schema.get("minimum", 0), "number": 0, "boolean": False}[kind]

    def problems(self, response, path, method):
        """What is wrong with `response` by the document: an undocumented status or body."""
        responses = self.doc["paths"][path][method]["responses"]
        status = str(response.status_code)
        if status not in responses:
            return [f"status {status} is not documented ({', '.join(responses)})"]
        documented, pointer = self.resolve(responses[status], f"/paths/{escape(path)}/{method}/responses/{status}")
        if "application/json" not in documented.get("content", {}):
            return []
        try:
            body = response.json()
        except ValueError:
            return [f"{status} is documented as JSON, got {response.headers.get('content-type')}: {response.text[:200]}"]
        ref = f"{DOC_URI}#{pointer}/content/application~1json/schema"
        validator = Draft202012Validator({"$ref": ref}, registry=self.registry)
        return [f"{status} body: {e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(body)]

    def send(self, path, method, body=None, query=""):
        return requests.request(method.upper(), f"{URL}{path}{query}", json=body, headers=self.headers, timeout=30)


def error_body(doc, response, path, method, status_class=4):
    """Why `response` is not a documented error (status 4xx, body per the document)."""
    why = [] if response.status_code // 100 == status_class else [f"status {response.status_code}"]
    return why + doc.problems(response, path, method)


def unknown_property(doc, path):
    schema = doc.body_schema(path, "post")
    report(f"{path}: the body schema has additionalProperties: false", schema.get("additionalProperties") is False,
           f"additionalProperties is {schema.get('additionalProperties', 'absent')}")
    body = {**doc.sample(schema), **HARMLESS.get(path, {}), "porta_conformance_unknown": 1}
    r = doc.send(path, "post", body)
    why = error_body(doc, r, path, "post")
    if r.status_code != 400 or "unknown field" not in r.text:
        why.append(f"answered {r.status_code}: {r.text[:200]}")
    report(f"{path}: an unknown property is answered 400 unknown field, as documented", not why, "; ".join(why))


def valid_call(doc, path, method="post"):
    body = {**doc.sample(doc.body_schema(path, method)), **HARMLESS[path]} if method == "post" else None
    r = doc.send(path, method, body)
    why = doc.problems(r, path, method)
    if r.status_code != 200:
        why.append(f"answered {r.status_code}: {r.text[:200]}")
    report(f"{path}: a minimal valid request is answered 200 as documented", not why, "; ".join(why))


def limit_above_maximum(doc):
    path = "/api/v1/read_file"
    limit = doc.body_schema(path, "post")["properties"]["limit"]
    if "maximum" not in limit:
        report(f"{path}: limit above the documented maximum is 400", False, f"no maximum documented: {limit}")
        return
    body = {**doc.sample(doc.body_schema(path, "post")), "path": NONCE_FILE, "limit": limit["maximum"] + 1}
    r = doc.send(path, "post", body)
    why = error_body(doc, r, path, "post")
    if r.status_code != 400:
        why.append(f"answered {r.status_code}: {r.text[:160]}")
    report(f"{path}: limit {limit['maximum'] + 1} (maximum {limit['maximum']}) is 400 with the documented error",
           not why, "; ".join(why))


def audit_export_format(doc):
    found = [p for p, ops in doc.doc["paths"].items() if "audit" in p and "export" in p and "get" in ops]
    report("the document describes the audit export", bool(found), f"no audit export among {list(doc.doc['paths'])}")
    path = found[0] if found else "/api/audit/export"
    r = doc.send(path, "get", query="?format=xml")
    if found:
        why = error_body(doc, r, path, "get")
    else:  # undocumented: held to the document's shared error schema
        error = Draft202012Validator({"$ref": f"{DOC_URI}#/components/schemas/Error"}, registry=doc.registry)
        try:
            why = [] if r.status_code // 100 == 4 else [f"status {r.status_code}"]
            why += [e.message for e in error.iter_errors(r.json())]
        except ValueError:
            why = [f"{r.status_code} {r.headers.get('content-type')}: {r.text[:160]}"]
    report(f"{path}?format=xml is 4xx with the documented error body", not why, "; ".join(why))


def no_token(doc):
    path = "/api/v1/meta"
    r = requests.get(f"{URL}{path}", timeout=30)
    why = error_body(doc, r, path, "get")
    if r.status_code != 401 or "www-authenticate" not in r.headers:
        why.append(f"answered {r.status_code} with WWW-Authenticate {r.headers.get('www-authenticate')!r}")
    report(f"{path} without a token is 401 with WWW-Authenticate and the documented error", not why, "; ".join(why))


def main():
    r = requests.get(f"{URL}/api/v1/openapi.json", timeout=30)
    report("GET /api/v1/openapi.json is JSON", r.ok and r.headers.get("content-type", "").startswith("application/json"),
           f"{r.status_code} {r.headers.get('content-type')}")
    try:
        validate(r.json())
        report("openapi-spec-validator accepts the document", True)
    except Exception as e:  # noqa: BLE001
        report("openapi-spec-validator accepts the document", False, f"{type(e).__name__}: {str(e)[:300]}")
    doc = Document(r.json())

    for path, ops in doc.doc["paths"].items():
        if "get" in ops and path != "/api/v1/openapi.json" and "requestBody" not in ops["get"]:
            valid_call(doc, path, "get")
    for path in HARMLESS:  # in order: read_file reads what write_file wrote
        valid_call(doc, path)
    for path, ops in doc.doc["paths"].items():
        if "application/json" in ops.get("post", {}).get("requestBody", {}).get("content", {}):
            unknown_property(doc, path)
    limit_above_maximum(doc)
    no_token(doc)
    audit_export_format(doc)


if __name__ == "__main__":
    finish(main)
