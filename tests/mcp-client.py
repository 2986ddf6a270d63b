#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `pip install mcp`) for
druppie's tests: connects to a server, lists its tools, makes the calls
given as JSON, and prints what came back as one JSON document.

    mcp-client.py stdio COMMAND [ARG...] < CALLS
    mcp-client.py http URL < CALLS     (MCP_BEARER: a bearer token to send)

CALLS, on stdin, is a JSON list of [tool, arguments]. The output is
{"server": {...}, "tools": [{name, description, read_only}],
 "calls": [{tool, arguments, is_error, text, structured} or
           {tool, arguments, protocol_error}]}.
"""

import asyncio
import json
import os
import sys

from mcp import Client, MCPError, StdioServerParameters


async def run(server, calls):
    out = {"tools": [], "calls": []}
    async with Client(server, read_timeout_seconds=120) as client:
        out["server"] = {
            "name": client.server_info.name if client.server_info else None,
            "instructions": client.instructions,
            "protocol_version": client.protocol_version,
        }
        listed = await client.list_tools()
        for tool in listed.tools:
            annotations = tool.annotations
            out["tools"].append(
                {
                    "name": tool.name,
                    "description": tool.description,
                    "read_only": bool(annotations and annotations.read_only_hint),
                    "input_schema": tool.input_schema,
                }
            )
        for name, arguments in calls:
            entry = {"tool": name, "arguments": arguments}
            try:
                result = await client.call_tool(name, arguments)
            except MCPError as e:
                entry["protocol_error"] = str(e)
            else:
                entry["is_error"] = bool(result.is_error)
                entry["text"] = "".join(
                    c.text for c in result.content if getattr(c, "type", "") == "text"
                )
                entry["structured"] = result.structured_content
            out["calls"].append(entry)
    return out


def main():
    calls = json.load(sys.stdin)
    mode = sys.argv[1]
    if mode == "stdio":
        # The SDK passes only a few variables to the server; druppie's own
        # (the secrets its config names) are passed on as well.
        env = {k: v for k, v in os.environ.items() if k.startswith("DRUPPIE_")}
        server = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:], env=env)
    elif mode == "http":
        server = sys.argv[2]
        token = os.environ.get("MCP_BEARER")
        if token:
            # The daemon's API token, as every writing request carries it.
            from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

            client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
            server = streamable_http_client(server, http_client=client)
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(asyncio.run(run(server, calls)), indent=1))


if __name__ == "__main__":
    main()
