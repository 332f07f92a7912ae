#!/usr/bin/env python3
"""Porta's GraphQL as strict, standard clients see it: `gql` with `graphql-core`, and the
`graphql-transport-ws` protocol spoken byte by byte with `websockets`.

(a) the standard introspection and `build_client_schema`; (b) queries whose fields carry
millisecond timestamps and byte counts, with results parsed against the schema (a 32-bit
`Int` holding a larger value fails); (c) a subscription over `graphql-transport-ws`;
(d) every close case of that protocol; (e) GraphQL over HTTP's status codes.

Run with the environment `checks.py` describes.
"""

import asyncio
import json
import re
import time

import requests
from gql import Client, GraphQLRequest
from gql.transport.requests import RequestsHTTPTransport
from gql.transport.websockets import WebsocketsTransport
from graphql import GraphQLInputObjectType, GraphQLObjectType, build_client_schema, get_introspection_query
from graphql import get_named_type
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from checks import SERVER, TOKEN, URL, finish, report

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
WS_URL = re.sub(r"^http", "ws", URL) + "/graphql/ws"
PROTOCOL = "graphql-transport-ws"

def check(name, fn, *args):
    """Runs `fn`: ok when it returns, FAIL with the exception's text when it raises."""
    try:
        result = fn(*args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        report(name, True)
        return result
    except Exception as e:  # noqa: BLE001
        report(name, False, f"{type(e).__name__}: {str(e)[:400]}")
        return None


def http_client(schema=None, fetch_schema=False):
    transport = RequestsHTTPTransport(url=f"{URL}/graphql", headers=HEADERS, timeout=30, retries=0)
    return Client(transport=transport, schema=schema, fetch_schema_from_transport=fetch_schema,
                  parse_results=True, serialize_variables=True)


# (a) Introspection.

def introspect_with_gql():
    with http_client(fetch_schema=True) as session:
        return session.client.schema


def introspect_like_graphiql():
    query = get_introspection_query(descriptions=True, specified_by_url=True, directive_is_repeatable=True,
                                    schema_description=True, input_value_deprecation=True, one_of=True)
    with http_client() as session:
        return build_client_schema(session.execute(GraphQLRequest(query)))


def shallow_schema():
    """A fallback so that (b) can still run when the standard introspection is refused."""
    ref = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
    query = ("{ __schema { queryType { name } mutationType { name } subscriptionType { name } types { kind name "
             f"fields {{ name args {{ name type {{ {ref} }} defaultValue }} type {{ {ref} }} }} "
             f"inputFields {{ name type {{ {ref} }} defaultValue }} interfaces {{ kind name }} "
             "enumValues { name } possibleTypes { kind name } } directives { name locations "
             f"args {{ name type {{ {ref} }} defaultValue }} }} }} }}")
    body = requests.post(f"{URL}/graphql", json={"query": query}, headers=HEADERS, timeout=30).json()
    return build_client_schema(body["data"])


def exploding():
    """Lists in lists grow with each level: such introspection is refused, and says why."""
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    r = requests.post(f"{URL}/graphql", json={"query": query}, timeout=30,
                      headers={**HEADERS, "Accept": "application/graphql-response+json"})
    body = r.json()
    assert r.status_code == 400 and "data" not in body, f"answered {r.status_code}: {str(body)[:200]}"
    assert "lists" in body["errors"][0]["message"], body


# (b) 64-bit values.

# Fields and arguments that carry Unix milliseconds or byte counts (durations are short).
WIDE = re.compile(r"(?<!duration)(?<!interval)(?<!step)Ms$|Bytes$|^(memory(Total|Used)?|swap(Total|Used)|bytes|timestamps)$")
WIDE_FIELDS = {"DiskView.total", "DiskView.used"}


def no_wide_int(schema):
    wide = []
    for name, t in schema.type_map.items():
        if name.startswith("__") or not isinstance(t, GraphQLObjectType | GraphQLInputObjectType):
            continue
        for field, definition in t.fields.items():
            if get_named_type(definition.type).name == "Int" and (WIDE.search(field) or f"{name}.{field}" in WIDE_FIELDS):
                wide.append(f"{name}.{field}")
            for arg, a in getattr(definition, "args", {}).items():
                if get_named_type(a.type).name == "Int" and WIDE.search(arg):
                    wide.append(f"{name}.{field}({arg})")
    int64 = "" if "Int64" in schema.type_map else "the schema has no Int64 scalar; "
    assert not wide and not int64, f"{int64}{len(wide)} are Int: {', '.join(wide)}"


def parsed(schema, query, variables=None):
    with http_client(schema=schema) as session:
        return session.execute(GraphQLRequest(query, variable_values=variables))


def wait_for_sample(schema):
    deadline = time.monotonic() + 30
    query = """query($s: String!) { serverSample(serverId: $s) { tsMs intervalMs memoryTotal memoryUsed swapTotal
               swapUsed uptimeS processes disks { mount total used } top { pid memory } } }"""
    while True:
        got = parsed(schema, query, {"s": SERVER})
        if got["serverSample"]:
            return got
        assert time.monotonic() < deadline, "the server reported no sample within 30 s"
        time.sleep(0.5)


def since_variable(schema):
    arg = schema.query_type.fields["auditLog"].args["sinceMs"]
    since = int(time.time() * 1000) - 3600_000
    got = parsed(schema, f"query($since: {arg.type}) {{ auditLog(sinceMs: $since, limit: 5) {{ atMs }} }}",
                 {"since": since})
    assert all(e["atMs"] >= since for e in got["auditLog"]), got


def json_numbers():
    body = requests.post(f"{URL}/graphql", headers=HEADERS, timeout=30,
                         json={"query": "{ servers { createdMs } auditLog(limit: 1) { atMs } }"}).json()
    values = [s["createdMs"] for s in body["data"]["servers"]] + [e["atMs"] for e in body["data"]["auditLog"]]
    assert values and all(type(v) is int and v > 2**31 for v in values), f"not JSON numbers: {values}"


# (c) A subscription with gql.

async def one_sample():
    transport = WebsocketsTransport(url=WS_URL, headers=HEADERS, subprotocols=[PROTOCOL], connect_timeout=10)
    query = "subscription($s: [String!]!) { serverSamples(serverIds: $s) { serverId sample { tsMs cpu } } }"
    async with Client(transport=transport) as session:
        assert transport.subprotocol == PROTOCOL, f"negotiated {transport.subprotocol!r}"
        request = GraphQLRequest(query, variable_values={"s": [SERVER]})
        async with asyncio.timeout(30):
            async for item in session.subscribe(request, parse_result=False):
                assert item["serverSamples"]["serverId"] == SERVER, item
                return


# (d) The protocol's close cases, raw.

def message(kind, **fields):
    return json.dumps({"type": kind, **fields})


def subscribe(id, query):
    return message("subscribe", id=id, payload={"query": query})


SAMPLES = f'subscription {{ serverSamples(serverIds: ["{SERVER}"]) {{ serverId }} }}'


async def closed_with(sends, want, within=10.0, init=True):
    """Opens a socket (acknowledged when `init`), sends `sends`, and waits for the close `want`."""
    async with connect(WS_URL, additional_headers=HEADERS, subprotocols=[PROTOCOL], open_timeout=10) as ws:
        if init:
            await ws.send(message("connection_init"))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["type"] == "connection_ack", ack
        for text in sends:
            await ws.send(text)
        got = []
        try:
            async with asyncio.timeout(within):
                while True:
                    got.append(await ws.recv())
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            assert code == want, f"closed with {code} ({e.rcvd and e.rcvd.reason!r}), not {want}"
        except TimeoutError:
            kinds = [json.loads(m).get("type") for m in got]
            raise AssertionError(f"still open after {within:.0f} s (received {kinds})") from None


async def validation_error():
    async with connect(WS_URL, additional_headers=HEADERS, subprotocols=[PROTOCOL], open_timeout=10) as ws:
        await ws.send(message("connection_init"))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(subscribe("bad", f'subscription {{ serverSamples(serverIds: ["{SERVER}"]) {{ nope }} }}'))
        got = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert got["type"] == "error" and got["id"] == "bad", f"answered {got}"
        assert isinstance(got["payload"], list) and got["payload"][0]["message"], got
        await ws.send(message("ping"))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong", "nothing after the error"


# (e) GraphQL over HTTP.

def syntax_error(accept, status, media_type=None):
    """A query that does not parse, with `accept`: the status `status` (and the `media_type`)."""
    r = requests.post(f"{URL}/graphql", headers={**HEADERS, "Accept": accept}, timeout=30,
                      json={"query": "{ me { id "})
    body = r.json()
    kind = r.headers.get("content-type", "")
    assert r.status_code == status, f"status {r.status_code}, not {status}"
    assert body.get("errors"), body
    if media_type:
        assert kind.startswith(media_type), f"content-type {kind!r}, not {media_type}"
    if accept == "application/graphql-response+json":
        assert "data" not in body, f"a request that failed to parse has a data key: {body}"


def main():
    schema = check("(a) introspection with gql (fetch_schema_from_transport)", introspect_with_gql)
    graphiql = check("(a) graphql-core's get_introspection_query (all options) + build_client_schema",
                     introspect_like_graphiql)
    schema = schema or graphiql
    if schema is None:
        print("     (b) runs on a schema read by a shallower introspection query")
        schema = shallow_schema()

    check("(a) introspection nesting four lists is refused with the reason", exploding)
    check("(b) no Int field or argument holds ms timestamps or byte counts (Int64 instead)", no_wide_int, schema)
    check("(b) me", parsed, schema, "{ me { id username isAdmin } }")
    check("(b) servers { createdMs lastSeenMs } parses", parsed, schema, "{ servers { id createdMs lastSeenMs } }")
    check("(b) apiTokens { createdMs lastUsedMs } parses", parsed, schema,
          "{ apiTokens { id createdMs expiresMs lastUsedMs revokedMs } }")
    check("(b) auditLog { atMs } parses", parsed, schema, "{ auditLog(limit: 20) { seq atMs action } }")
    check("(b) auditLog(sinceMs: $since) with a ms timestamp variable", since_variable, schema)
    check("(b) team { workspaces { createdMs } members { joinedMs } } parses", lambda: [
        parsed(schema, "query($t: String!) { team(id: $t) { workspaces { createdMs } members { joinedMs } } }",
               {"t": t["id"]}) for t in parsed(schema, "{ teams { id } }")["teams"]])
    check("(b) serverSample's bytes and tsMs parse", wait_for_sample, schema)
    check("(b) serverMetrics { fromMs toMs timestamps } parses", parsed, schema,
          "query($s: String!) { serverMetrics(serverId: $s, window: M15) { fromMs toMs stepMs timestamps } }",
          {"s": SERVER})
    check("(b) 64-bit values are JSON numbers", json_numbers)

    check("(c) serverSamples over graphql-transport-ws with gql: one item", one_sample)

    check("(d) subscribe before connection_init closes 4401", closed_with, [subscribe("1", SAMPLES)], 4401, 10, False)
    check("(d) two subscribes with one id close 4409", closed_with, [subscribe("1", SAMPLES)] * 2, 4409)
    check("(d) a message that is not JSON closes 4400", closed_with, ["this is not JSON"], 4400)
    check("(d) a message of an unknown type closes 4400 (its reason fits a frame)",
          closed_with, [message("launch", id="1", payload={"query": SAMPLES})], 4400)
    check("(d) no connection_init closes 4408", closed_with, [], 4408, 20, False)
    check("(d) a subscription that fails validation gets an error message", validation_error)

    check("(e) syntax error, Accept graphql-response+json: 400 and no data",
          syntax_error, "application/graphql-response+json", 400, "application/graphql-response+json")
    check("(e) syntax error, Accept application/json: 200", syntax_error, "application/json", 200)
    check("(e) Accept application/json is answered as application/json",
          syntax_error, "application/json", 200, "application/json")


if __name__ == "__main__":
    finish(main)
