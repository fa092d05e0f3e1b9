/**
 * Mastra (`@mastra/core`): `requireApproval` tools decided in Slack.
 *
 * - `slackApprovedTool(client, { id, requireApproval: true, execute, ... })`: the options of
 *   `createTool`, with the approval moved into `execute`: the call waits for Slack, runs at
 *   most once with the input as approved (a reviewer's edit replaces the model's input),
 *   and a rejection or an expiry is the tool's result in words the model can act on, so the
 *   run goes on instead of hanging. `requireApproval` is switched off for Mastra itself.
 * - `answerToolCallApproval(client, agent, chunk, runId)`: for a tool that keeps Mastra's own
 *   approval stop, answer a `tool-call-approval` stream chunk from Slack with
 *   `agent.approveToolCall` or `agent.declineToolCall`, returning the resumed stream. An
 *   approval with edits cannot pass new input there, so it is declined (fail closed) and
 *   the edited input returned for the caller to tell the model.
 *
 * `@mastra/core` is a peer dependency, used for its types only.
 */

import type { ToolAction, ToolExecutionContext } from "@mastra/core/tools";

import { ask, runOnce, type ApprovalOptions } from "./approval.js";
import type { HitlClient } from "./client.js";

/** Mastra's `ZodLikeSchema` (not exported under a public path): what `inputSchema` takes. */
type ZodLike = {
  parse: (data: unknown) => any;
  safeParse: (data: unknown) => { success: boolean; data?: any; error?: any };
};

/** `opts` for `createTool`, its calls decided in Slack when `requireApproval` is true (or unset). */
export function slackApprovedTool<TIn extends ZodLike | undefined = undefined>(
  client: HitlClient,
  opts: ToolAction<TIn, any, any, any, ToolExecutionContext<TIn, any, any>>,
  options: ApprovalOptions<Record<string, unknown>> = {},
): ToolAction<TIn, any, any, any, ToolExecutionContext<TIn, any, any>> {
  const execute = opts.execute;
  if (typeof execute !== "function") {
    throw new TypeError(`slackApprovedTool(${opts.id}): the tool has no execute function to gate`);
  }
  if (opts.requireApproval === false) return opts;
  let calls = 0;
  const gated = async (context: ToolExecutionContext<TIn, any, any>, invocation?: Parameters<typeof execute>[1]) => {
    const input = context.context as Record<string, unknown>;
    const callId = invocation?.toolCallId ?? `${context.runId ?? "run"}:${opts.id}:${calls++}`;
    const ruling = await ask(client, opts.id, callId, input, options, "mastra");
    if (!ruling.approved) return ruling.message;
    const approved = { ...context, context: ruling.input as typeof context.context };
    return runOnce(client, ruling.request, () => execute(approved, invocation));
  };
  return { ...opts, requireApproval: false, execute: gated as typeof execute };
}

/** The payload of Mastra's `tool-call-approval` chunk. */
export interface ToolCallApprovalChunk {
  type: "tool-call-approval";
  runId?: string;
  payload: { toolCallId: string; toolName: string; args: Record<string, unknown> };
}

/** What `answerToolCallApproval` needs of an `Agent`. */
export interface ApprovingAgent<STREAM> {
  approveToolCall(options: { runId: string; toolCallId?: string }): Promise<STREAM>;
  declineToolCall(options: { runId: string; toolCallId?: string }): Promise<STREAM>;
}

export interface Answered<STREAM> {
  approved: boolean;
  /** Why it was declined (the reviewer's words, an expiry, or the edited input). */
  message?: string;
  stream: STREAM;
}

/** Answer one `tool-call-approval` chunk from Slack, resuming the agent's run. */
export async function answerToolCallApproval<STREAM>(
  client: HitlClient,
  agent: ApprovingAgent<STREAM>,
  chunk: ToolCallApprovalChunk,
  runId: string,
  options: ApprovalOptions<Record<string, unknown>> = {},
): Promise<Answered<STREAM>> {
  const { toolCallId, toolName, args } = chunk.payload;
  const ruling = await ask(client, toolName, `${runId}:${toolCallId}`, args, options, "mastra-approval");
  const resume = { runId, toolCallId };
  if (!ruling.approved) return { approved: false, message: ruling.message, stream: await agent.declineToolCall(resume) };
  if (JSON.stringify(ruling.input) !== JSON.stringify(args)) {
    const message = `The reviewer approved ${toolName} only with changes; call it again with exactly this input: ` +
      JSON.stringify(ruling.input);
    return { approved: false, message, stream: await agent.declineToolCall(resume) };
  }
  return { approved: true, stream: await agent.approveToolCall(resume) };
}
