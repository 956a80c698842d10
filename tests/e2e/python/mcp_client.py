"""Drives `vitaltrends mcp` with the official MCP Python SDK over stdio, as Claude Desktop would.

Reads a JSON job on stdin: {"command", "args", "env", "calls": [{"name", "arguments"}],
"repeat": N, "pause_s": S}. Initializes, lists tools, resources and prompts, reads every resource, gets every
prompt, makes the calls (N rounds), and prints one JSON document with what the server answered.
The SDK itself checks each structured answer against the tool's output schema.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    job = json.load(sys.stdin)
    params = StdioServerParameters(command=job["command"], args=job["args"], env=job["env"])
    out = {"rounds": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.serverInfo.name
            out["protocol"] = init.protocolVersion
            out["instructions"] = init.instructions
            tools = await session.list_tools()
            out["tools"] = [
                {
                    "name": t.name,
                    "read_only": bool(t.annotations and t.annotations.readOnlyHint),
                    "input_schema": t.inputSchema,
                    "output_schema": t.outputSchema,
                }
                for t in tools.tools
            ]
            resources = await session.list_resources()
            out["resources"] = {}
            for r in resources.resources:
                contents = await session.read_resource(r.uri)
                out["resources"][str(r.uri)] = contents.contents[0].text
            prompts = await session.list_prompts()
            out["prompts"] = {}
            for p in prompts.prompts:
                got = await session.get_prompt(p.name)
                out["prompts"][p.name] = got.messages[0].content.text
            for i in range(job.get("repeat", 1)):
                if i:
                    await asyncio.sleep(job.get("pause_s", 0))
                answers = []
                for call in job["calls"]:
                    result = await session.call_tool(call["name"], call.get("arguments", {}))
                    answers.append(
                        {
                            "name": call["name"],
                            "is_error": bool(result.isError),
                            "structured": result.structuredContent,
                            "text": result.content[0].text if result.content else None,
                        }
                    )
                out["rounds"].append(answers)
    json.dump(out, sys.stdout)


asyncio.run(main())
