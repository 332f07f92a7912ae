#!/usr/bin/env python3
"""Porta's `/mcp` as the official Python MCP SDK (`mcp` on PyPI) sees it.

Streamable HTTP with an API token as `Authorization: Bearer`: initialise, list the tools,
call read-only ones, give up on a write that waits for the person's approval (the SDK sends
`notifications/cancelled`) and see Porta end it as cancelled, then close the session and
make sure the SDK logged nothing about it.

Run with the environment `checks.py` describes.
"""

import json
import logging
import time
import uuid

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from checks import SERVER, TOKEN, URL, finish, report

AGENT = "python-mcp-sdk"
TOOLS = ["list_servers", "list_dir", "read_file", "search", "system_info", "recent_metrics", "write_file", "run_command"]


class Captured(logging.Handler):
    """Every warning or error the SDK's loggers (`mcp.*`) emit."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(f"{record.name}: {record.getMessage()}")


async def graphql(http, query, variables=None):
    r = await http.post(f"{URL}/graphql", json={"query": query, "variables": variables or {}})
    body = r.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


async def tool_calls(http, marker):
    """The calls of AGENT's approval conversations whose arguments contain `marker`."""
    found = []
    convs = await graphql(http, "query($s: String) { conversations(search: $s) { id } }",
                          {"s": f"Changes asked for by {AGENT}"})
    for c in convs["conversations"]:
        q = "query($id: String!) { conversation(id: $id) { messages { toolCalls { id decision arguments } } } }"
        d = await graphql(http, q, {"id": c["id"]})
        for m in d["conversation"]["messages"]:
            found += [t for t in m["toolCalls"] or [] if marker in json.dumps(t["arguments"])]
    return found


async def until(what, probe, within=30.0):
    """Polls `probe` until it returns something truthy; that, or a TimeoutError naming `what`."""
    deadline = time.monotonic() + within
    while True:
        got = await probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:.0f} s")
        await anyio.sleep(0.2)


async def give_up_on_a_write(session, gql_http, sent, label):
    """Asks for a write, waits until the person is asked, cancels the call from the client."""
    marker = f"conformance-{uuid.uuid4().hex[:12]}.txt"
    outcome = {}

    async def ask():
        try:
            outcome["result"] = await session.call_tool(
                "write_file", {"server_id": SERVER, "path": marker, "content": "never written\n"})
        except Exception as e:  # noqa: BLE001 — reported below
            outcome["error"] = e

    async def pending():
        if outcome:
            return "answered"
        calls = await tool_calls(gql_http, marker)
        return calls if any(c["decision"] == "pending" for c in calls) else None

    before = len(sent)
    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        try:
            waiting = await until("the write waiting for approval", pending)
        except Exception as e:  # noqa: BLE001 — reported below
            waiting = e
        tg.cancel_scope.cancel()  # the SDK's caller-cancel path: sends notifications/cancelled
    if isinstance(waiting, Exception):
        report(f"{label}: write_file waits for the person", False, f"{type(waiting).__name__}: {waiting}")
        return
    if waiting == "answered":
        report(f"{label}: write_file waits for the person", False, f"answered at once: {outcome}")
        return
    report(f"{label}: write_file waits for the person", True)
    report(f"{label}: the SDK sent notifications/cancelled", len(sent) > before, "no cancellation was POSTed")

    async def cancelled():
        calls = await tool_calls(gql_http, marker)
        return calls if calls and all(c["decision"] == "cancelled" for c in calls) else None

    try:
        await until("decision cancelled", cancelled)
        report(f"{label}: the pending approval ends as cancelled", True)
    except TimeoutError:
        report(f"{label}: the pending approval ends as cancelled", False,
               f"still {await tool_calls(gql_http, marker)}")

    async def audited():
        d = await graphql(gql_http, "{ auditLog(action: \"agent.write_file\", limit: 50) { result detail } }")
        return [e for e in d["auditLog"] if marker in (e["detail"] or "") and "cancelled" in e["result"]]

    try:
        events = await until("audit event", audited)
        report(f"{label}: audited as cancelled by the client", "cancelled by the client" in events[0]["result"],
               f"{events[0]}")
    except TimeoutError:
        report(f"{label}: audited as cancelled by the client", False, "no agent.write_file event says cancelled")

    read = await session.call_tool("read_file", {"server_id": SERVER, "path": marker})
    report(f"{label}: nothing was written", read.is_error, f"{marker} exists: {read.content}")


async def main():
    sdk_log = Captured()
    logging.getLogger("mcp").addHandler(sdk_log)
    deletes, cancels = [], []

    async def on_request(request):
        if request.method == "POST" and b"notifications/cancelled" in request.content:
            cancels.append(request.content)

    async def on_response(response):
        if response.request.method == "DELETE":
            deletes.append(response.status_code)

    headers = {"Authorization": f"Bearer {TOKEN}", "X-PORTA-AGENT": AGENT}
    http = create_mcp_http_client(headers=headers)
    http.event_hooks = {"request": [on_request], "response": [on_response]}
    gql_http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    async with http, gql_http:
        async with streamable_http_client(f"{URL}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                report("initialize", init.server_info.name == "porta" and init.capabilities.tools is not None,
                       f"{init}")

                names = [t.name for t in (await session.list_tools()).tools]
                missing = [t for t in TOOLS if t not in names]
                report("tools/list names Porta's tools", not missing, f"missing {missing} from {names}")

                servers = await session.call_tool("list_servers", {})
                ids = [s["server_id"] for s in (servers.structured_content or {}).get("servers", [])]
                report("list_servers includes CONFORMANCE_SERVER", not servers.is_error and SERVER in ids, f"{servers}")

                info = await session.call_tool("system_info", {"server_id": SERVER})
                sc = info.structured_content or {}
                report("system_info (read-only, no approval) answers",
                       not info.is_error and isinstance(sc.get("cpus"), int) and "os" in sc, f"{info}")

                listing = await session.call_tool("list_dir", {"server_id": SERVER, "path": "."})
                report("list_dir (read-only, no approval) answers", not listing.is_error, f"{listing}")

                bad = await session.call_tool("read_file", {"path": "x"})
                report("a call without server_id is a tool error", bad.is_error, f"{bad}")

                for label in ["cancel", "cancel again (not blocked by the first)"]:
                    try:
                        await give_up_on_a_write(session, gql_http, cancels, label)
                    except Exception as e:  # noqa: BLE001
                        report(f"{label}: write_file waits for the person", False, f"{type(e).__name__}: {e}")
                before_close = len(sdk_log.records)
        # The session and its transport are closed here: the SDK sent DELETE /mcp.
    report("DELETE /mcp ends the session with 200 or 204 (what the SDK accepts)",
           len(deletes) == 1 and deletes[0] in (200, 204), f"DELETE answered {deletes}")
    on_close = sdk_log.records[before_close:]
    report("closing logs no SDK warning or error", not on_close, f"{on_close}")
    report("no SDK warning or error during the whole session", not sdk_log.records, f"{sdk_log.records}")


if __name__ == "__main__":
    finish(lambda: anyio.run(main), "the MCP session runs to its end")
