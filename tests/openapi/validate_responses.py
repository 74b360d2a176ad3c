#!/usr/bin/python3
"""Validates the answers the test suite recorded against the OpenAPI documents.

ctest `openapi_responses` (docs/testing.md) runs it after every test that records
(loyalty_add_test(... OPENAPI)); each such test appended one JSON line per answer it received
from the POS API or HQ to a file of LOYALTY_OPENAPI_RECORD (tests/support/api_record.h):

    {"api": "pos"|"hq", "method", "target", "status", "content_type", "body", "test"}

For each answer: the document of its API (`pos` -> --doc pos=..., `hq` -> --doc hq-admin=...;
HQ's terminal routes /v1/sync/{terminal_id}/... are the sync protocol's, counted and skipped
unless a document `hq-sync` is given), the operation whose path template and method match the
request (a literal path before a templated one, as OpenAPI says; a request that matches none
is answered as the document's `x-unmatched-route` says), the response of that status (or
`4XX`/`default`), the media type of the answer, and for JSON the body against the schema
(JSON Schema 2020-12, as OpenAPI 3.1; `format: date-time` checked). Any answer that does not
fit fails the run, with the route, the status, the JSON pointer in the body and why, and the
test that received it. No records at all fails too: the recording broke.

    validate_responses.py --doc pos=docs/openapi/pos-api.yaml \\
        --doc hq-admin=docs/openapi/hq-admin.yaml RECORD_DIR
    validate_responses.py --reset RECORD_DIR     # empty (or make) the folder

Needs Debian's python3-jsonschema and python3-yaml (scripts/install-deps).
"""

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import sys
import urllib.parse

import jsonschema
import yaml
from jsonschema.exceptions import best_match

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")


def _is_date_time(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(_is_date_time)


def escape_pointer(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(parts):
    return "".join("/" + escape_pointer(p) for p in parts)


def resolve_local(doc, ref):
    """The object a local $ref ("#/a/b") names, and its pointer ("/a/b")."""
    if not ref.startswith("#"):
        raise ValueError("only local $refs are supported, got " + ref)
    node = doc
    ptr = ref[1:]
    for token in ptr.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[token]
    return node, ptr


class Document:
    """One OpenAPI document: its operations by path template, and schema validators."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        if not str(self.doc.get("openapi", "")).startswith("3.1"):
            raise ValueError(f"{path}: not an OpenAPI 3.1 document")
        self.routes = []  # (literal segments, regex, template), most specific first
        for template in self.doc.get("paths", {}):
            regex = "^"
            literals = 0
            for segment in template.strip("/").split("/"):
                if re.fullmatch(r"\{[^{}]+\}", segment):
                    regex += "/[^/]+"
                else:
                    regex += "/" + re.escape(segment)
                    literals += 1
            self.routes.append((literals, re.compile(regex + "$"), template))
        self.routes.sort(key=lambda r: (-r[0], r[2]))
        self.validators = {}

    def operation(self, method, path):
        """(template, operation pointer) of the operation that serves the request, or None."""
        for _, regex, template in self.routes:
            if not regex.match(path):
                continue
            item = self.doc["paths"][template]
            item_ptr = pointer(["paths", template])
            if "$ref" in item:
                item, item_ptr = resolve_local(self.doc, item["$ref"])
            if method.lower() in item:
                return template, item_ptr + pointer([method.lower()])
        return None

    def node(self, ptr):
        node, _ = resolve_local(self.doc, "#" + ptr)
        return node

    def response(self, responses_ptr, status):
        """(key, pointer) of the response documented for `status` under `responses_ptr`."""
        responses = self.node(responses_ptr)
        for key in (str(status), f"{status // 100}XX", "default"):
            if key in responses:
                ptr = responses_ptr + pointer([key])
                node = responses[key]
                while "$ref" in node:
                    node, ptr = resolve_local(self.doc, node["$ref"])
                return key, ptr
        return None

    def validator(self, schema_ptr):
        v = self.validators.get(schema_ptr)
        if v is None:
            # The document itself is the root schema (none of its own keys is a JSON Schema
            # keyword), so every "#/components/..." $ref resolves as written.
            root = dict(self.doc)
            root["$ref"] = "#" + schema_ptr
            v = jsonschema.Draft202012Validator(root, format_checker=FORMATS)
            self.validators[schema_ptr] = v
        return v


def api_of(record):
    """Which document a record belongs to: pos, hq-admin or hq-sync."""
    if record.get("api") == "pos":
        return "pos"
    if record.get("api") == "hq":
        path = urllib.parse.unquote(record["target"].split("?", 1)[0])
        parts = [p for p in path.split("/") if p]
        # As HQ routes (hq/src/routes.cc ParseTerminalRoute): /v1/sync/{tid}/{route...}.
        if len(parts) >= 4 and parts[0] == "v1" and parts[1] == "sync":
            return "hq-sync"
        return "hq-admin"
    return None


def describe_errors(errors, limit=5):
    out = []
    for e in sorted(errors, key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))[:limit]:
        where = pointer(e.absolute_path) or "(the body)"
        line = f"at {where}: {e.message}"
        # oneOf/anyOf: say what each branch refused, the deepest first.
        if e.context:
            best = best_match(e.context)
            if best is not None:
                line += f" [closest branch: at {pointer(best.absolute_path) or '(the body)'}: {best.message}]"
        out.append(line[:600])
    if len(errors) > limit:
        out.append(f"... and {len(errors) - limit} more")
    return out


def check(doc, record):
    """(route label, [problems]) for one record."""
    method = record["method"].upper()
    target = record["target"]
    path = urllib.parse.unquote(target.split("?", 1)[0])
    status = int(record["status"])
    found = doc.operation(method, path)
    if found is None:
        unmatched = doc.doc.get("x-unmatched-route")
        label = f"{method} {path} (no documented route)"
        if unmatched is None:
            return label, [f"no path template and method of {doc.name} serves {method} {path}"]
        responses_ptr = "/x-unmatched-route/responses"
    else:
        template, op_ptr = found
        label = f"{method} {template}"
        responses_ptr = op_ptr + "/responses"
    response = doc.response(responses_ptr, status)
    if response is None:
        what = "the route" if found else "x-unmatched-route"
        return label, [f"status {status} is not documented for {what}"]
    key, response_ptr = response
    content = doc.node(response_ptr).get("content")
    body = record.get("body", "")
    if not content:
        return label, ([] if body == "" else [f"{status}: the document has no body, got {body[:200]!r}"])
    media = (record.get("content_type") or "").split(";", 1)[0].strip().lower()
    if media not in content:
        return label, [f"{status}: media type {media!r} is not documented (only {', '.join(content)})"]
    media_ptr = response_ptr + pointer(["content", media])
    if "schema" not in content[media]:
        return label, []
    if media != "application/json" and not media.endswith("+json"):
        return label, []  # text: nothing in it to check
    try:
        value = json.loads(body)
    except ValueError as e:
        return label, [f"{status}: the body is not JSON ({e}): {body[:200]!r}"]
    errors = list(doc.validator(media_ptr + "/schema").iter_errors(value))
    if not errors:
        return label, []
    return label, [f"{status} (documented as {key}): the body does not fit the schema"] + \
        describe_errors(errors)


def read_records(folder):
    records = []
    problems = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    for k in ("api", "method", "target", "status"):
                        if k not in r:
                            raise ValueError(f"no {k!r}")
                except ValueError as e:
                    problems.append(f"{name}:{n}: not a record ({e})")
                    continue
                r["_file"] = name
                records.append(r)
    return records, problems


def main(argv=None, out=sys.stdout):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--doc", action="append", default=[], metavar="API=FILE",
                   help="the document of an API: pos, hq-admin or hq-sync")
    p.add_argument("--reset", action="store_true", help="empty (or make) RECORD_DIR and exit")
    p.add_argument("--max-failures", type=int, default=40)
    p.add_argument("record_dir")
    args = p.parse_args(argv)

    if args.reset:
        shutil.rmtree(args.record_dir, ignore_errors=True)
        os.makedirs(args.record_dir)
        return 0

    docs = {}
    for spec in args.doc:
        name, _, path = spec.partition("=")
        if name not in ("pos", "hq-admin", "hq-sync") or not path:
            p.error(f"--doc {spec}: expected pos=FILE, hq-admin=FILE or hq-sync=FILE")
        docs[name] = Document(name, path)

    if not os.path.isdir(args.record_dir):
        print(f"FAIL: no record folder {args.record_dir}: the tests that record did not run "
              "(run them with this test: ctest -R 'openapi_responses|agent_api_tests|...')",
              file=out)
        return 1
    records, problems = read_records(args.record_dir)
    if not records:
        print(f"FAIL: no records in {args.record_dir}: no test recorded an answer. Run the "
              "tests added with loyalty_add_test(... OPENAPI) in the same ctest run (ctest "
              "orders them before this one); if they ran, the recording "
              "(tests/support/api_record.h, LOYALTY_OPENAPI_RECORD) is broken.", file=out)
        return 1

    checked = collections.Counter()     # api -> answers validated
    skipped = collections.Counter()     # api -> answers without a document
    seen = collections.Counter()        # (api, route, status) -> answers
    failures = collections.OrderedDict()  # (api, route, problem) -> [records]
    for r in records:
        api = api_of(r)
        if api is None:
            problems.append(f"{r['_file']}: unknown api {r.get('api')!r}")
            continue
        if api not in docs:
            skipped[api] += 1
            continue
        route, found = check(docs[api], r)
        checked[api] += 1
        seen[(api, route, int(r["status"]))] += 1
        if found:
            failures.setdefault((api, route, "\n  ".join(found)), []).append(r)

    print(f"validated {sum(checked.values())} answers from {len(set(r['_file'] for r in records))} "
          "test processes: " + ", ".join(f"{k} {v}" for k, v in sorted(checked.items())), file=out)
    for api, n in sorted(skipped.items()):
        print(f"not validated (no document given): {api} {n}", file=out)
    print("answers by route and status:", file=out)
    for (api, route, status), n in sorted(seen.items()):
        print(f"  {api:8} {route:45} {status}  {n}", file=out)

    for problem in problems:
        print("FAIL: " + problem, file=out)
    if failures:
        print(f"\nFAIL: {sum(len(v) for v in failures.values())} answers do not fit the "
              f"documents ({len(failures)} distinct problems):", file=out)
        for i, ((api, route, problem), rs) in enumerate(failures.items()):
            if i == args.max_failures:
                print(f"... and {len(failures) - i} more distinct problems", file=out)
                break
            first = rs[0]
            print(f"\n[{api}] {route}: {problem}", file=out)
            print(f"  {len(rs)} answer(s); first: {first['method']} {first['target']} -> "
                  f"{first['status']} in {first.get('test') or '?'} ({first['_file']})", file=out)
            print(f"  body: {first.get('body', '')[:400]}", file=out)
    if failures or problems:
        return 1
    print("OK", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
