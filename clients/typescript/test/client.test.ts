import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthenticationError,
  ConflictError,
  ExpiredError,
  HitlClient,
  InvalidRequestError,
  RejectedError,
  WaitTimeoutError,
} from "../src/index.js";
import { client, unique } from "./support.js";

test("an approval with an edit answers the params as the reviewer approved them", async () => {
  const filed = await client.request("scale_service", "Scale api to 5 replicas", {
    params: { service: "api", replicas: 5 }, run_id: 'edit {"service": "api", "replicas": 2}', mode: "gate",
  });
  assert.equal(filed.status, "pending");
  const decision = await client.approved(filed.id, { timeout: 60 });
  assert.deepEqual(decision.params, { service: "api", replicas: 2 });
  assert.deepEqual(decision.by, ["U0ALICE"]);
});

test("a rejection carries the reviewer's reason and is not an expiry", async () => {
  const filed = await client.request("drop_table", "Drop the users table", {
    run_id: "reject not on a Friday", mode: "gate",
  });
  const err = await client.approved(filed.id, { timeout: 60 }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof RejectedError, String(err));
  assert.ok(!(err instanceof ExpiredError));
  assert.equal(err.request.status, "rejected");
  assert.match(err.reason, /not on a Friday/);
});

test("an expiry is ExpiredError saying no one decided, not a rejection", async () => {
  const filed = await client.request("rotate_keys", "Rotate the signing keys", {
    run_id: "expire", mode: "gate", timeout: 1,
  });
  const err = await client.approved(filed.id, { timeout: 60 }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ExpiredError, String(err));
  assert.ok(!(err instanceof RejectedError));
  assert.equal(err.request.status, "expired");
  assert.match(err.reason, /No one decided in time/);
});

test("wait gives up with WaitTimeoutError, and cancel withdraws the request once", async () => {
  const filed = await client.request("deploy", "Deploy v2", { run_id: "hold", mode: "gate" });
  const started = Date.now();
  const err = await client.wait(filed.id, { timeout: 1 }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof WaitTimeoutError, String(err));
  assert.ok(Date.now() - started < 10_000);
  const cancelled = await client.cancel(filed.id);
  assert.equal(cancelled.status, "cancelled");
  const again = await client.cancel(filed.id).then(() => null, (e: unknown) => e);
  assert.ok(again instanceof ConflictError && again.status === 409 && again.field === "id", String(again));
  assert.throws(() => client.get(filed.id, 61), RangeError);
});

test("invalid input and a wrong key are errors naming the field", async () => {
  const bad = await client.request("deploy", "Deploy", { timeout: -1 }).then(() => null, (e: unknown) => e);
  assert.ok(bad instanceof InvalidRequestError, String(bad));
  assert.equal(bad.status, 422);
  assert.equal(bad.field, "timeout");
  const stranger = new HitlClient({ baseUrl: client.baseUrl, apiKey: "not-a-key" });
  const refused = await stranger.request("deploy", "Deploy").then(() => null, (e: unknown) => e);
  assert.ok(refused instanceof AuthenticationError && refused.field === "Authorization", String(refused));
});

test("a batch files the plan and each step, and the same idempotency key files nothing twice", async () => {
  const key = unique("plan");
  const plan = await client.batch("Migrate, then reindex", [
    { action: "migrate", summary: "Run the migration" },
    { action: "reindex", summary: "Reindex search" },
  ], { run_id: "hold", idempotency_key: key });
  assert.deepEqual(plan.items.map((i) => i.action), ["migrate", "reindex"]);
  const again = unique("request");
  const first = await client.request("deploy", "Deploy v3", { run_id: "hold", idempotency_key: again });
  const second = await client.request("deploy", "Deploy v3", { run_id: "hold", idempotency_key: again });
  assert.equal(second.id, first.id);
  await client.cancel(first.id);
});
