"""Checks the REST API's answers against the OpenAPI document it serves, with `jsonschema`.

Reads a JSON job on stdin: {"base", "token", "requests": [{"path", "query"}]}. Fetches
/api/v1/openapi.json, then makes each request with the bearer token and validates the body
against the schema the document gives for that path's response of the same status. Prints
{"paths": [documented paths], "results": [{"path", "status", "errors": [...]}]}.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from jsonschema import Draft202012Validator


def get(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main() -> None:
    job = json.load(sys.stdin)
    status, doc = get(job["base"] + "/api/v1/openapi.json")
    assert status == 200, status
    out = {"openapi": doc.get("openapi"), "paths": sorted(doc["paths"]), "results": []}
    for req in job["requests"]:
        query = urllib.parse.urlencode(req.get("query", {}))
        url = job["base"] + req["path"] + (f"?{query}" if query else "")
        status, body = get(url, job["token"])
        responses = doc["paths"][req["path"]]["get"]["responses"]
        documented = responses.get(str(status))
        errors = []
        if documented is None:
            errors.append(f"status {status} is not documented")
        else:
            schema = documented["content"]["application/json"]["schema"]
            # Resolve "#/components/..." references against the served document itself.
            root = dict(schema)
            root["components"] = doc.get("components", {})
            validator = Draft202012Validator(root)
            errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(body)]
        out["results"].append(
            {"path": req["path"], "query": req.get("query", {}), "status": status, "errors": errors[:5], "body": body}
        )
    json.dump(out, sys.stdout)


main()
