import assert from "node:assert/strict";
import { test } from "node:test";

import { RuntimeContext } from "@mastra/core/runtime-context";
import { createTool } from "@mastra/core/tools";
import { z } from "zod";

import { answerToolCallApproval, slackApprovedTool } from "../src/mastra.js";
import { client, unique } from "./support.js";

function deleteFiles(ran: unknown[], runId: string) {
  return createTool(slackApprovedTool(client, {
    id: "delete_files",
    description: "Delete files under a path",
    inputSchema: z.object({ path: z.string() }),
    requireApproval: true,
    execute: async ({ context }) => {
      ran.push(context);
      return { deleted: context.path };
    },
  }, { fields: { run_id: runId } }));
}

async function call(t: ReturnType<typeof deleteFiles>, input: { path: string }) {
  assert.ok(t.execute);
  return t.execute({ context: input, runtimeContext: new RuntimeContext() }, {
    toolCallId: unique("mastra-call"), messages: [],
  });
}

test("a requireApproval tool runs once with the path the reviewer approved", async () => {
  const ran: unknown[] = [];
  const t = deleteFiles(ran, 'edit {"path": "/tmp/cache"}');
  assert.equal(t.requireApproval, false);  // Slack decides, not Mastra's own stop
  assert.deepEqual(await call(t, { path: "/" }), { deleted: "/tmp/cache" });
  assert.deepEqual(ran, [{ path: "/tmp/cache" }]);
});

test("a declined requireApproval tool answers the reason instead of hanging or running", async () => {
  const ran: unknown[] = [];
  const out = await call(deleteFiles(ran, "reject keep the logs"), { path: "/var/log" });
  assert.deepEqual(ran, []);
  assert.match(String(out), /keep the logs/);
});

test("a tool-call-approval chunk is approved or declined on the agent from Slack", async () => {
  const resumed: string[] = [];
  const agent = {
    approveToolCall: async (o: { runId: string; toolCallId?: string }) => { resumed.push(`approve ${o.toolCallId}`); return "stream"; },
    declineToolCall: async (o: { runId: string; toolCallId?: string }) => { resumed.push(`decline ${o.toolCallId}`); return "stream"; },
  };
  const runId = unique("run");
  const chunk = (id: string) => ({
    type: "tool-call-approval" as const, payload: { toolCallId: id, toolName: "delete_files", args: { path: "/srv" } },
  });
  const yes = await answerToolCallApproval(client, agent, chunk("c1"), runId, { fields: { run_id: "approve" } });
  const no = await answerToolCallApproval(client, agent, chunk("c2"), runId, { fields: { run_id: "reject too broad" } });
  assert.equal(yes.approved, true);
  assert.equal(no.approved, false);
  assert.match(no.message ?? "", /too broad/);
  assert.deepEqual(resumed, ["approve c1", "decline c2"]);
});
