import assert from "node:assert/strict";
import { test } from "node:test";

import { generateText, stepCountIs, tool, type ModelMessage } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";

import { answerApprovalRequests, slackApproval } from "../src/ai-sdk.js";
import { client, unique } from "./support.js";

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

/** A model that calls `name` with `input` once, then answers with text. */
function callsOnce(name: string, input: unknown): MockLanguageModelV3 {
  const callId = unique("call");
  return new MockLanguageModelV3({
    doGenerate: [
      {
        content: [{ type: "tool-call", toolCallId: callId, toolName: name, input: JSON.stringify(input) }],
        finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage, warnings: [],
      },
      { content: [{ type: "text", text: "done" }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] },
    ],
  });
}

function transferTool(ran: unknown[]) {
  return tool({
    description: "Move money",
    inputSchema: z.object({ to: z.string(), amount: z.number() }),
    needsApproval: true,
    execute: async (input) => {
      ran.push(input);
      return { sent: input.amount, to: input.to };
    },
  });
}

test("a needsApproval tool waits for Slack and runs once with the reviewer's edit", async () => {
  const ran: unknown[] = [];
  const transfer = slackApproval(client, "transfer", transferTool(ran), {
    fields: { run_id: 'edit {"to": "acct-1", "amount": 100}' },
  });
  const result = await generateText({
    model: callsOnce("transfer", { to: "acct-1", amount: 999 }), prompt: "pay", tools: { transfer },
    stopWhen: stepCountIs(3),
  });
  assert.deepEqual(ran, [{ to: "acct-1", amount: 100 }]);
  const [output] = result.steps.flatMap((s) => s.toolResults).map((r) => r.output);
  assert.deepEqual(output, { sent: 100, to: "acct-1" });
  assert.equal(result.text, "done");
});

test("a rejection is the tool's result in the reviewer's words, and the tool never runs", async () => {
  const ran: unknown[] = [];
  const transfer = slackApproval(client, "transfer", transferTool(ran), {
    fields: { run_id: "reject that account is closed" },
  });
  const result = await generateText({
    model: callsOnce("transfer", { to: "acct-9", amount: 5 }), prompt: "pay", tools: { transfer },
    stopWhen: stepCountIs(3),
  });
  assert.deepEqual(ran, []);
  const [output] = result.steps.flatMap((s) => s.toolResults).map((r) => r.output);
  assert.match(String(output), /that account is closed/);
  assert.match(String(output), /did not run/);
});

test("tool-approval-request parts are answered from Slack server-side", async () => {
  const ran: unknown[] = [];
  const tools = { transfer: transferTool(ran) };
  const model = callsOnce("transfer", { to: "acct-2", amount: 7 });
  const prompt: ModelMessage[] = [{ role: "user", content: "pay" }];
  const first = await generateText({ model, messages: prompt, tools, stopWhen: stepCountIs(3) });
  assert.deepEqual(ran, []);
  assert.ok(first.content.some((p) => p.type === "tool-approval-request"));
  const answer = await answerApprovalRequests(client, first.content, { fields: { run_id: "approve" } });
  assert.ok(answer);
  assert.equal(answer.content[0]?.type, "tool-approval-response");
  const second = await generateText({
    model, messages: [...prompt, ...first.response.messages, answer], tools, stopWhen: stepCountIs(3),
  });
  assert.deepEqual(ran, [{ to: "acct-2", amount: 7 }]);
  assert.equal(second.text, "done");
});

test("an approval with edits is not run as the model asked: the denial gives the edited input", async () => {
  const ran: unknown[] = [];
  const tools = { transfer: transferTool(ran) };
  const first = await generateText({
    model: callsOnce("transfer", { to: "acct-3", amount: 50 }), prompt: "pay", tools, stopWhen: stepCountIs(3),
  });
  const answer = await answerApprovalRequests(client, first.content, {
    fields: { run_id: 'edit {"to": "acct-3", "amount": 5}' },
  });
  const response = answer?.content[0];
  assert.ok(response && response.type === "tool-approval-response");
  assert.equal(response.approved, false);
  assert.match(response.reason ?? "", /"amount":5/);
  assert.deepEqual(ran, []);
});
