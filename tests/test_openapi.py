"""Tests that the OpenAPI document is valid and true to the routes of the node.

The node serves ``seventweets/openapi.json`` as is at ``GET /openapi.json``. These tests
check the document itself, and ``test_schemathesis.py`` checks a live node against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
import tornado.httputil
import tornado.web

from seventweets.handlers.base import JsonHandler
from tests.conftest import Client

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Every operation of version 1 of the node protocol. A route the node adds beyond these
# may be in the document too, but none of these may go missing.
PROTOCOL_OPERATIONS = {
    ("GET", "/tweets"),
    ("POST", "/tweets"),
    ("GET", "/tweets/{id}"),
    ("DELETE", "/tweets/{id}"),
    ("POST", "/retweets"),
    ("GET", "/search"),
    ("GET", "/registry"),
    ("POST", "/registry"),
    ("DELETE", "/registry/{name}"),
    ("POST", "/gossip"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
}

TWEET_WRITES = {("POST", "/tweets"), ("DELETE", "/tweets/{id}"), ("POST", "/retweets")}
NODE_TO_NODE_WRITES = {
    ("POST", "/registry"),
    ("DELETE", "/registry/{name}"),
    ("POST", "/gossip"),
}
TOKEN_SECURITY = [{"bearerToken": []}, {"apiTokenHeader": []}]
NODE_SECURITY = [{}, {"clusterSignature": []}]

# Stands in for a path parameter, both in the document's paths and in reversed routes.
PLACEHOLDER = "PARAM"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    raw = resources.files("seventweets").joinpath("openapi.json").read_bytes()
    return json.loads(raw)


@pytest.fixture
def served_app(
    app: tornado.web.Application, http_server: Any
) -> tornado.web.Application:
    """Return the app fixture with its server started.

    pytest-tornado binds the port of ``app`` up front and closes that socket only
    through ``http_server``, so an app that is never served leaks it.
    """
    return app


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (METHOD, path, operation object) for every operation of the document."""
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(document: dict[str, Any], pointer: str) -> Any:
    """Return the value of a local JSON pointer such as ``#/components/schemas/Tweet``."""
    assert pointer.startswith("#/"), f"$ref {pointer!r} is not local to the document"
    value: Any = document
    for token in pointer[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(value, dict) and token in value, (
            f"$ref {pointer!r} does not resolve"
        )
        value = value[token]
    return value


def deref(document: dict[str, Any], value: Any) -> Any:
    """Follow ``$ref`` until the value is not a reference."""
    while isinstance(value, dict) and "$ref" in value:
        value = resolve(document, value["$ref"])
    return value


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def nullable_to_json_schema(value: Any) -> Any:
    """Rewrite OpenAPI 3.0 ``nullable: true`` as JSON Schema, which has no such keyword."""
    if isinstance(value, list):
        return [nullable_to_json_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {key: nullable_to_json_schema(item) for key, item in value.items()}
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def schema_validator(document: dict[str, Any], schema: Any) -> jsonschema_rs.Validator:
    """Build a JSON Schema validator for ``schema``, whose $refs point into the document.

    OpenAPI 3.0 schema objects are a variant of JSON Schema draft 4. Draft 4 ignores the
    keywords and formats it does not know, such as ``example`` and ``int64``.
    """
    root = {
        "allOf": [nullable_to_json_schema(schema)],
        "components": nullable_to_json_schema(document["components"]),
    }
    return jsonschema_rs.Draft4Validator(root)


def examples(document: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """Yield (where, schema, example) for every example next to a schema."""
    for name, schema in document["components"]["schemas"].items():
        if "example" in schema:
            yield f"components/schemas/{name}", schema, schema["example"]
    for name, parameter in document["components"]["parameters"].items():
        if "example" in parameter:
            yield (
                f"components/parameters/{name}",
                parameter["schema"],
                parameter["example"],
            )
    for name, header in document["components"]["headers"].items():
        if "example" in header:
            yield f"components/headers/{name}", header["schema"], header["example"]
    for name, response in document["components"]["responses"].items():
        for media_type, media in response.get("content", {}).items():
            if "example" in media:
                yield (
                    f"components/responses/{name} {media_type}",
                    media["schema"],
                    media["example"],
                )
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if "example" in parameter:
                where = f"{method} {path} parameter {parameter['name']}"
                yield where, parameter["schema"], parameter["example"]
        bodies = [("request body", operation.get("requestBody", {}))]
        bodies += [
            (f"response {code}", r) for code, r in operation["responses"].items()
        ]
        for label, body in bodies:
            body = deref(document, body)
            for media_type, media in body.get("content", {}).items():
                if "example" in media:
                    where = f"{method} {path} {label} {media_type}"
                    yield where, media["schema"], media["example"]


def route_paths(app: tornado.web.Application) -> set[str]:
    """Return the path of every route of ``app``, each regex group replaced by PLACEHOLDER."""
    paths = set()
    for rule in app.wildcard_router.rules:
        matcher = rule.matcher
        # PathMatches.reverse returns None for a pattern too complex to rebuild a path from.
        path = matcher.reverse(*[PLACEHOLDER] * matcher.regex.groups)
        assert path is not None, f"route {matcher.regex.pattern!r} cannot be reversed"
        # Every route accepts an optional trailing slash, which is no part of the path.
        paths.add(path.removesuffix("/?"))
    return paths


def document_path(path: str) -> str:
    return re.sub(r"\{[^}/]+\}", PLACEHOLDER, path)


def handler_class(
    app: tornado.web.Application, path: str
) -> type[tornado.web.RequestHandler]:
    """Return the handler class that ``app`` routes a request for ``path`` to."""
    start_line = tornado.httputil.RequestStartLine("GET", path, "HTTP/1.1")
    headers = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1"})
    request = tornado.httputil.HTTPServerRequest(start_line=start_line, headers=headers)
    delegate = app.find_handler(request)
    return delegate.handler_class


def implemented_methods(cls: type[tornado.web.RequestHandler]) -> set[str]:
    """Return the HTTP methods that ``cls`` implements, in upper case, without HEAD.

    Every route with GET also serves HEAD, which the document leaves implicit.
    """
    assert issubclass(cls, JsonHandler)
    return set(cls.allowed_methods()) - {"HEAD"}


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    """The document passes the OpenAPI 3.0 meta-schema that schemathesis validates with."""
    schema = schemathesis.openapi.from_dict(document)

    schema.validate()

    assert document["openapi"].startswith("3.0.")


def test_document_refs_resolve(document: dict[str, Any]) -> None:
    """Every $ref in the document points at a value inside the document."""
    pointers = set(refs(document))

    for pointer in pointers:
        resolve(document, pointer)

    assert pointers


def test_document_links_name_operations(document: dict[str, Any]) -> None:
    """Every link names an operation of the document and parameters that it has."""
    operation_ids = {
        op["operationId"]: (path, op) for _, path, op in operations(document)
    }
    links = []

    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            for name, link in deref(document, response).get("links", {}).items():
                where = f"link {name} of {method} {path} {code}"
                assert link["operationId"] in operation_ids, where
                target_path, target = operation_ids[link["operationId"]]
                parameters = document["paths"][target_path].get("parameters", [])
                parameters = parameters + target.get("parameters", [])
                names = {deref(document, parameter)["name"] for parameter in parameters}
                assert set(link["parameters"]) <= names, where
                links.append(where)

    assert len(links) >= 8


def test_document_examples_match_schemas(document: dict[str, Any]) -> None:
    """Every example in the document is valid under the schema it illustrates."""
    checked = []

    for where, schema, example in examples(document):
        errors = [
            error.message
            for error in schema_validator(document, schema).iter_errors(example)
        ]
        assert errors == [], f"example of {where} is invalid: {errors}"
        checked.append(where)

    assert len(checked) > 20


def test_document_covers_protocol(document: dict[str, Any]) -> None:
    """The document has an operation for every method and path of the node protocol."""
    documented = {(method, path) for method, path, _ in operations(document)}

    missing = PROTOCOL_OPERATIONS - documented

    assert missing == set()


def test_document_paths_match_routes(
    served_app: tornado.web.Application, document: dict[str, Any]
) -> None:
    """Every route of make_app has a path in the document, and every path has a route."""
    routes = route_paths(served_app)

    documented = {document_path(path) for path in document["paths"]}

    assert documented - routes == set(), "paths in the document that no route serves"
    assert routes - documented == set(), "routes that the document leaves out"


def test_document_methods_match_handlers(
    served_app: tornado.web.Application, document: dict[str, Any]
) -> None:
    """Each path's operations are exactly the methods its handler class implements."""
    mismatches = {}

    for path, item in document["paths"].items():
        cls = handler_class(served_app, document_path(path))
        documented = {method.upper() for method in HTTP_METHODS if method in item}
        implemented = implemented_methods(cls)
        if (
            cls is served_app.settings["default_handler_class"]
            or documented != implemented
        ):
            mismatches[path] = {"documented": documented, "implemented": implemented}

    assert mismatches == {}


def test_write_operations_require_credentials(document: dict[str, Any]) -> None:
    """Tweet writes need the API token, node-to-node writes a signature, reads nothing."""
    for method, path, operation in operations(document):
        security = operation.get("security", document.get("security"))

        if (method, path) in TWEET_WRITES:
            assert security == TOKEN_SECURITY, f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path}"
        elif (method, path) in NODE_TO_NODE_WRITES:
            assert security == NODE_SECURITY, f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path}"
        else:
            assert security is None, f"{method} {path}"
            assert "401" not in operation["responses"], f"{method} {path}"


def test_error_responses_use_error_schema(document: dict[str, Any]) -> None:
    """Every 4xx and 5xx response has a JSON body that extends the Error schema."""
    error_ref = "#/components/schemas/Error"
    checked = 0

    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            if not code.startswith(("4", "5")):
                continue
            schema = deref(document, response)["content"]["application/json"]["schema"]
            extended = [schema, *deref(document, schema).get("allOf", [])]
            assert {"$ref": error_ref} in extended, f"{method} {path} {code}"
            checked += 1

    assert checked > 30


def test_bodies_and_queries_document_their_errors(document: dict[str, Any]) -> None:
    """Operations with a JSON body list 400, 413, 415 and 422, and query parameters 400."""
    for method, path, operation in operations(document):
        codes = set(operation["responses"])
        parameters = [deref(document, p) for p in operation.get("parameters", [])]

        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= codes, f"{method} {path}"
        if any(parameter["in"] == "query" for parameter in parameters):
            assert "400" in codes, f"{method} {path}"


@pytest.mark.gen_test
async def test_node_serves_document(client: Client) -> None:
    """GET /openapi.json returns the packaged document byte for byte, as JSON."""
    expected = resources.files("seventweets").joinpath("openapi.json").read_bytes()

    response = await client.request("GET", "/openapi.json")

    assert response.code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.body == expected
