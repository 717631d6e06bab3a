/**
 * Property-based tests of the HTTP boundary, in process (`createApp(...).fetch`): generated headers, content types
 * and bodies (binary and structured CloudEvents, near-valid and hostile; see test/fuzz/arbitraries.ts) must get a
 * documented answer — never a crash, never a 500 — and only well-formed pending events with valid data may reach
 * Kubernetes. Kubernetes here is unreachable (every call fails as a transport error, as when the API server is
 * down), so a request that reaches it is answered 503, and the test knows exactly which requests did.
 *
 * CI runs PGW_FUZZ_RUNS (default 2,000) generated requests with a fixed seed (PGW_FUZZ_SEED); the dedicated
 * run (`npm run fuzz`, test/fuzz/run.ts) sends over 100,000, in process and over HTTP to the real service.
 * Every violation is collected and grouped, so one run reports every kind of problem, each with its smallest
 * example, rather than only the first.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { anyRequest, binaryRequest, rawRequest, structuredRequest } from "../fuzz/arbitraries.ts";
import { appWithUnreachableKube, fuzzInProcess, report } from "../fuzz/in-process.ts";

const RUNS = Number(process.env.PGW_FUZZ_RUNS) || 2_000;
const SEED = Number(process.env.PGW_FUZZ_SEED) || 20_261_125;

describe(`fuzz: ${RUNS} generated requests in process (seed ${SEED})`, () => {
  const share = (part: number) => Math.max(50, Math.round(RUNS * part));
  for (const [name, arbitrary, part] of [
    ["binary mode: ce-* headers, extensions, content types, data", binaryRequest, 0.4],
    ["structured mode: attributes of any type, hostile extensions, odd JSON", structuredRequest, 0.4],
    ["anything else: methods, paths, headers, garbage and oversized bodies", rawRequest, 0.2],
  ] as const) {
    test(name, async (t) => {
      const runs = share(part);
      const started = performance.now();
      const { problems, kubeCalls } = await fuzzInProcess(arbitrary, runs, SEED);
      t.diagnostic(`${runs} requests in ${Math.round(performance.now() - started)} ms; ${kubeCalls} reached (unreachable) Kubernetes; ${problems.size} kinds of violation`);
      assert.equal(problems.size, 0, `violations:${report(problems)}`);
    });
  }

  test("a fixed-seed mix replays identically (the failing seed of any run can be reproduced)", () => {
    const first = fc.sample(anyRequest, { numRuns: 20, seed: SEED });
    const second = fc.sample(anyRequest, { numRuns: 20, seed: SEED });
    assert.deepEqual(second, first);
  });
});

/** The smallest examples of what the fuzz found, one test each so each fix turns one test green. */
describe("found by fuzzing", () => {
  const { app } = appWithUnreachableKube();
  const post = async (headers: Record<string, string>, body: string) => {
    const response = await app.fetch(new Request("http://provisioner.test/", { method: "POST", headers, body }));
    return { status: response.status, type: response.headers.get("ce-type"), body: await response.text() };
  };
  const structured = (event: Record<string, unknown>, contentType = "application/cloudevents+json") => post({ "content-type": contentType }, JSON.stringify(event));
  const base = { specversion: "1.0", id: "f-1", source: "/fuzz", type: "io.podgateway.client.pending" };
  const binaryHeaders = { "ce-specversion": "1.0", "ce-id": "f-1", "ce-source": "/fuzz", "ce-type": "io.podgateway.client.pending", "content-type": "application/json" };

  test("id or source that cannot be an HTTP header value (newline, beyond Latin-1): answered, not 500", async () => {
    for (const [id, source] of [["a\nb", "/fuzz"], ["f-2", "/fuzz/😀"], ["事件", "/fuzz"], ["nul\u0000", "/fuzz"]]) {
      const reply = await structured({ ...base, id, source, data: { gateway_name: "not a label" } });
      assert.notEqual(reply.status, 500, `id ${JSON.stringify(id)} source ${JSON.stringify(source)}: ${reply.body}`);
    }
  });

  test("structured event without an id: 400 (the SDK would invent a random one, and every redelivery would make a new pod)", async () => {
    const { id: _, ...noId } = base;
    const reply = await structured({ ...noId, data: { gateway_name: "foo" } });
    assert.equal(reply.status, 400, reply.body);
  });

  test("missing or invalid required attributes: 400, not 500 or 202", async () => {
    const { "ce-source": _s, ...noSource } = binaryHeaders;
    const { "ce-type": _t, ...noType } = binaryHeaders;
    const cases: [string, Promise<{ status: number; body: string }>][] = [
      ["binary without ce-source", post(noSource, '{"gateway_name":"foo"}')],
      ["binary without ce-type", post(noType, '{"gateway_name":"foo"}')],
      ["binary ce-specversion 2.0", post({ ...binaryHeaders, "ce-specversion": "2.0" }, '{"gateway_name":"foo"}')],
      ["binary empty ce-specversion", post({ ...binaryHeaders, "ce-specversion": "" }, '{"gateway_name":"foo"}')],
      ["structured id a number", structured({ ...base, id: 7, data: { gateway_name: "foo" } })],
      ["structured source missing", structured({ ...base, source: undefined, data: { gateway_name: "foo" } })],
      ["structured type an object", structured({ ...base, type: { a: 1 }, data: { gateway_name: "foo" } })],
      ["structured a JSON array", post({ "content-type": "application/cloudevents+json" }, "[]")],
      ["structured a JSON string", post({ "content-type": "application/cloudevents+json" }, '"x"')],
    ];
    const wrong: string[] = [];
    for (const [what, reply] of cases) {
      const { status, body } = await reply;
      if (status !== 400) wrong.push(`${what}: ${status} ${body.slice(0, 100)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test("invalid extension names or values: 400", async () => {
    const wrong: string[] = [];
    for (const [what, reply] of [
      ["binary ce-bad_name", post({ ...binaryHeaders, "ce-bad_name": "x" }, '{"gateway_name":"foo"}')],
      ["binary ce-bad-name", post({ ...binaryHeaders, "ce-bad-name": "x" }, '{"gateway_name":"foo"}')],
      ["structured Bad", structured({ ...base, Bad: "x", data: { gateway_name: "foo" } })],
      ["structured object value", structured({ ...base, ext: { a: 1 }, data: { gateway_name: "foo" } })],
    ] as const) {
      const { status, body } = await reply;
      if (status !== 400) wrong.push(`${what}: ${status} ${body.slice(0, 100)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test("extensions named like the SDK's methods do not break the service", async () => {
    for (const name of ["validate", "constructor", "cloneWith", "toJSON"]) {
      const reply = await structured({ ...base, [name]: "x", data: { gateway_name: "not a label" } });
      assert.ok(reply.status === 200 || reply.status === 400, `${name}: ${reply.status} ${reply.body}`);
    }
  });

  test("structured content types differing only in case or parameter spacing are accepted", async () => {
    for (const contentType of ["application/cloudevents+json;charset=utf-8", "application/cloudevents+json; charset=UTF-8", "Application/CloudEvents+JSON"]) {
      const reply = await structured({ ...base, data: { gateway_name: "not a label" } }, contentType);
      assert.equal(reply.status, 200, `${contentType}: ${reply.body}`);
      assert.equal(reply.type, "io.podgateway.client.scheduling.failed");
    }
  });
});
