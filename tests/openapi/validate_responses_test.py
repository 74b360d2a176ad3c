#!/usr/bin/python3
"""ctest `openapi_validator_tests`: validate_responses.py on hand-made records.

The validator must not pass everything: a conforming answer passes; an extra field, a wrong
type, a missing field, an error code outside the route's enum, an undocumented status or
route, a body that is not JSON, and no records at all each fail, naming the route and the
JSON pointer. The real documents (docs/openapi) load and judge a health answer the same way.
"""

import io
import json
import os
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import validate_responses  # noqa: E402

SPEC = textwrap.dedent("""\
    openapi: 3.1.0
    info: {title: t, version: "1"}
    x-unmatched-route:
      responses:
        "404":
          $ref: "#/components/responses/NotFound"
    paths:
      /v1/things/quote:
        post:
          responses:
            "200":
              description: ok
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Thing"}
      /v1/things/{id}:
        get:
          responses:
            "200":
              description: ok
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Thing"}
            "404":
              $ref: "#/components/responses/NotFound"
            "204":
              description: nothing
      /metrics:
        get:
          responses:
            "200":
              description: text
              content:
                text/plain:
                  schema: {type: string}
    components:
      responses:
        NotFound:
          description: not found
          content:
            application/json:
              schema:
                allOf:
                  - $ref: "#/components/schemas/Error"
                  - properties:
                      error:
                        properties:
                          code: {const: not_found}
      schemas:
        Thing:
          type: object
          additionalProperties: false
          required: [id, cents, at]
          properties:
            id: {type: string}
            cents: {type: integer}
            at: {type: string, format: date-time}
            tags:
              type: array
              items: {type: string}
        Error:
          type: object
          additionalProperties: false
          required: [error]
          properties:
            error:
              type: object
              additionalProperties: false
              required: [code, message]
              properties:
                code: {type: string, enum: [not_found, bad_request]}
                message: {type: string}
    """)

GOOD = {"id": "a", "cents": 1, "at": "2026-03-01T00:00:00Z", "tags": ["x"]}


def record(target, body, status=200, method="GET", api="pos", content_type="application/json"):
    return {"api": api, "method": method, "target": target, "status": status,
            "content_type": content_type,
            "body": body if isinstance(body, str) else json.dumps(body),
            "test": "Hand.Made"}


class ValidatorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.spec = os.path.join(self.tmp.name, "spec.yaml")
        with open(self.spec, "w", encoding="utf-8") as f:
            f.write(SPEC)
        self.records = os.path.join(self.tmp.name, "records")
        self.assertEqual(validate_responses.main(["--reset", self.records]), 0)

    def tearDown(self):
        self.tmp.cleanup()

    def run_with(self, records, docs=None):
        with open(os.path.join(self.records, "t-1.jsonl"), "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        out = io.StringIO()
        rc = validate_responses.main(
            [f"--doc={d}" for d in (docs or [f"pos={self.spec}"])] + [self.records], out=out)
        return rc, out.getvalue()

    def assertFails(self, records, *needles):
        rc, out = self.run_with(records)
        self.assertEqual(rc, 1, out)
        for n in needles:
            self.assertIn(n, out)
        return out

    def test_conforming_answers_pass(self):
        rc, out = self.run_with([
            record("/v1/things/a%20b?x=1", GOOD),
            record("/v1/things/quote", GOOD, method="POST"),
            record("/v1/things/zz", {"error": {"code": "not_found", "message": "no"}}, 404),
            record("/v1/things/zz", "", 204),
            record("/metrics", "# HELP x\n", content_type="text/plain; version=0.0.4"),
            # A route the document does not have: x-unmatched-route.
            record("/v1/nothing", {"error": {"code": "not_found", "message": "no route"}}, 404),
        ])
        self.assertEqual(rc, 0, out)
        self.assertIn("validated 6 answers", out)

    def test_an_extra_field_fails_naming_the_route_and_pointer(self):
        self.assertFails([record("/v1/things/a", dict(GOOD, extra=1))],
                         "GET /v1/things/{id}", "(the body)", "'extra'", "Hand.Made")

    def test_a_wrong_type_fails_at_its_pointer(self):
        self.assertFails([record("/v1/things/a", dict(GOOD, tags=["x", 3]))],
                         "at /tags/1", "3 is not of type 'string'")
        self.assertFails([record("/v1/things/a", dict(GOOD, cents="1"))], "at /cents")

    def test_a_missing_field_or_a_bad_time_fails(self):
        self.assertFails([record("/v1/things/a", {"id": "a", "cents": 1})], "'at' is a required")
        self.assertFails([record("/v1/things/a", dict(GOOD, at="2026-03-01 00:00"))],
                         "at /at", "date-time")

    def test_an_error_code_outside_the_routes_enum_fails(self):
        self.assertFails(
            [record("/v1/things/a", {"error": {"code": "bad_request", "message": "x"}}, 404)],
            "at /error/code")

    def test_an_undocumented_status_fails(self):
        self.assertFails([record("/v1/things/a", GOOD, 201)],
                         "GET /v1/things/{id}", "status 201 is not documented")
        self.assertFails([record("/v1/nothing", GOOD, 200)], "status 200 is not documented")

    def test_an_undocumented_route_fails_without_x_unmatched_route(self):
        spec = SPEC.replace("x-unmatched-route:", "x-other:")
        with open(self.spec, "w", encoding="utf-8") as f:
            f.write(spec)
        self.assertFails([record("/v1/nothing", {"error": {"code": "not_found", "message": "x"}},
                                 404)], "no path template and method")
        # A documented path with a method it does not have.
        self.assertFails([record("/v1/things/quote", GOOD, method="PUT")],
                         "no path template and method")

    def test_the_literal_path_wins_over_the_template(self):
        # POST /v1/things/quote is the quote; GET of it is the templated GET (id "quote").
        rc, out = self.run_with([record("/v1/things/quote", GOOD, method="POST"),
                                 record("/v1/things/quote", GOOD)])
        self.assertEqual(rc, 0, out)
        self.assertIn("POST /v1/things/quote", out)
        self.assertIn("GET /v1/things/{id}", out)

    def test_a_body_that_is_not_json_or_of_another_media_type_fails(self):
        self.assertFails([record("/v1/things/a", "{nope")], "not JSON")
        self.assertFails([record("/v1/things/a", GOOD, content_type="text/html")],
                         "media type 'text/html' is not documented")
        self.assertFails([record("/v1/things/a", "x", 204)], "has no body")

    def test_no_records_fail(self):
        rc, out = self.run_with([])
        self.assertEqual(rc, 1, out)
        self.assertIn("no records", out)
        out = io.StringIO()
        self.assertEqual(validate_responses.main(
            [f"--doc=pos={self.spec}", os.path.join(self.tmp.name, "absent")], out=out), 1)

    def test_a_broken_record_fails(self):
        with open(os.path.join(self.records, "t-2.jsonl"), "w", encoding="utf-8") as f:
            f.write("{\"api\": \"pos\"}\n")
        self.assertFails([record("/v1/things/a", GOOD)], "not a record")

    def test_hq_terminal_routes_are_counted_apart(self):
        rc, out = self.run_with(
            [record("/v1/sync/T01/hello", {"protocol": 1}, method="POST", api="hq"),
             record("/v1/things/a", GOOD, api="hq")],
            docs=[f"hq-admin={self.spec}"])
        self.assertEqual(rc, 0, out)
        self.assertIn("hq-admin 1", out)
        self.assertIn("not validated (no document given): hq-sync 1", out)


class RealDocumentsTest(unittest.TestCase):
    """docs/openapi as the suite uses them: they load, and judge answers."""

    HEALTH = {"status": "ok", "version": "0.1.0", "terminal_id": "T01", "store_id": "S001",
              "ledger": {"ok": True, "entries": 0}, "scanners": [],
              "sync": {"state": "idle", "last_success_at": None, "last_attempt_at": None,
                       "pending_entries": 0, "last_error": None},
              "clock": {"trusted": True, "hq_time": False}, "rules_version": "default"}

    def run_with(self, records):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "t-1.jsonl"), "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r) + "\n")
            out = io.StringIO()
            rc = validate_responses.main(
                ["--doc=pos=" + os.path.join(ROOT, "docs/openapi/pos-api.yaml"),
                 "--doc=hq-admin=" + os.path.join(ROOT, "docs/openapi/hq-admin.yaml"), d],
                out=out)
            return rc, out.getvalue()

    def test_a_health_answer_passes_and_a_changed_one_fails(self):
        rc, out = self.run_with([record("/v1/health", self.HEALTH),
                                 record("/v1/health", {"status": "ok"}, api="hq")])
        self.assertEqual(rc, 0, out)
        rc, out = self.run_with([record("/v1/health", dict(self.HEALTH, uptime_s=3))])
        self.assertEqual(rc, 1, out)
        self.assertIn("GET /v1/health", out)
        rc, out = self.run_with([record("/v1/health", dict(self.HEALTH, status="fine"))])
        self.assertEqual(rc, 1, out)
        self.assertIn("at /status", out)

    def test_an_error_body_with_a_code_the_route_cannot_answer_fails(self):
        body = {"error": {"code": "coupon_used", "message": "x"}}
        rc, out = self.run_with([record("/v1/identify", body, 422, method="POST")])
        self.assertEqual(rc, 1, out)
        self.assertIn("POST /v1/identify", out)
        body["error"]["code"] = "code_expired"
        rc, out = self.run_with([record("/v1/identify", body, 422, method="POST")])
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
