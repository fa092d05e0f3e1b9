/**
 * Vercel AI SDK (`ai` >= 6): tool calls decided in Slack.
 *
 * - `slackApproval(client, name, tool({...}))`: the tool waits for Slack inside its own
 *   `execute`. Its `needsApproval` (true, or a function of the input) says which calls go
 *   to Slack; the SDK's own approval stop is switched off, since Slack answers it. An
 *   approval runs the tool with the input as approved (a reviewer's edit replaces the
 *   model's input); a rejection is the tool's result, in the reviewer's words, so the model
 *   reads why; an expiry says no one decided. The tool runs at most once per call.
 * - `answerApprovalRequests(client, result.content)`: for a tool that keeps the SDK's
 *   `needsApproval`, the server side answers each `tool-approval-request` part from Slack
 *   and returns the `tool` message of `tool-approval-response` parts to send back. An
 *   approval response cannot carry new input, so an approval with edits is answered as a
 *   denial whose reason gives the edited input, for the model to call again with it (that
 *   call is reviewed again): the unedited input never runs.
 *
 * `ai` is a peer dependency, used for its types only.
 */

import type { Tool, ToolApprovalResponse, ToolExecutionOptions, ToolModelMessage } from "ai";

import { ask, refusalMessage, runOnce, type ApprovalOptions } from "./approval.js";
import type { HitlClient } from "./client.js";

type NeedsApproval<INPUT> = Tool<INPUT>["needsApproval"];

async function needs<INPUT>(rule: NeedsApproval<INPUT>, input: INPUT, options: ToolExecutionOptions): Promise<boolean> {
  if (rule === undefined || rule === true) return true;
  if (rule === false) return false;
  const context: Parameters<typeof rule>[1] = { toolCallId: options.toolCallId, messages: options.messages };
  if (options.experimental_context !== undefined) context.experimental_context = options.experimental_context;
  return rule(input as never, context);
}

/**
 * `tool` whose calls (those its `needsApproval` selects; all when it has none) wait for a
 * decision in Slack. Answers the tool's own output when approved, else the refusal as text.
 */
export function slackApproval<INPUT, OUTPUT>(
  client: HitlClient,
  name: string,
  tool: Tool<INPUT, OUTPUT>,
  options: ApprovalOptions<INPUT> = {},
): Tool<INPUT, OUTPUT | string> {
  const execute = tool.execute;
  if (typeof execute !== "function") {
    throw new TypeError(`slackApproval(${name}): the tool has no execute function to gate`);
  }
  const rule = tool.needsApproval as NeedsApproval<INPUT>;
  const gated = async (input: INPUT, opts: ToolExecutionOptions): Promise<OUTPUT | string> => {
    const run = async (using: INPUT): Promise<OUTPUT> => {
      const out = await execute(using, opts);
      if (out !== null && typeof out === "object" && Symbol.asyncIterator in out) {
        let last: OUTPUT | undefined;
        for await (const part of out as AsyncIterable<OUTPUT>) last = part;
        return last as OUTPUT;
      }
      return out as OUTPUT;
    };
    if (!(await needs(rule, input, opts))) return run(input);
    const ruling = await ask(client, name, opts.toolCallId, input, options, "ai-sdk");
    if (!ruling.approved) return ruling.message;
    return runOnce(client, ruling.request, () => run(ruling.input));
  };
  return { ...tool, needsApproval: false, execute: gated } as Tool<INPUT, OUTPUT | string>;
}

/** The SDK's `tool-approval-request` content part, as `generateText`'s result carries it. */
export interface ApprovalRequestPart {
  type: "tool-approval-request";
  approvalId: string;
  toolCall: { toolCallId: string; toolName: string; input: unknown };
}

function isApprovalRequest(part: unknown): part is ApprovalRequestPart {
  return typeof part === "object" && part !== null && (part as { type?: unknown }).type === "tool-approval-request";
}

function sameJson(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => x.localeCompare(y)).map(([k, w]) => [k, canon(w)]))
        : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/**
 * Answer every `tool-approval-request` in `content` (a `generateText` result's `content`, or
 * a step's) from Slack, in parallel; resolves to the `tool` message to append to the
 * conversation before calling the model again. Empty content: `undefined`.
 */
export async function answerApprovalRequests(
  client: HitlClient,
  content: readonly unknown[],
  options: ApprovalOptions<unknown> = {},
): Promise<ToolModelMessage | undefined> {
  const requests = content.filter(isApprovalRequest);
  if (requests.length === 0) return undefined;
  const answers = await Promise.all(requests.map(async (part): Promise<ToolApprovalResponse> => {
    const { toolName, input } = part.toolCall;
    const ruling = await ask(client, toolName, part.approvalId, input, options, "ai-sdk-approval");
    if (!ruling.approved) {
      return { type: "tool-approval-response", approvalId: part.approvalId, approved: false, reason: ruling.message };
    }
    if (!sameJson(ruling.input, input)) {
      return {
        type: "tool-approval-response", approvalId: part.approvalId, approved: false,
        reason: `The reviewer approved ${toolName} only with changes; call it again with exactly this input: ` +
          JSON.stringify(ruling.input),
      };
    }
    const by = ruling.request.decision?.by.join(", ");
    return { type: "tool-approval-response", approvalId: part.approvalId, approved: true, reason: `approved by ${by}` };
  }));
  return { role: "tool", content: answers };
}

export { refusalMessage };
