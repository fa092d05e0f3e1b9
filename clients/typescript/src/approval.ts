/**
 * One tool call decided in Slack, shared by the framework helpers (`ai-sdk`, `mastra`):
 * file it with an idempotency key derived from the framework's call id (a retried step
 * finds the same card, never a second one), wait, and run the tool at most once with the
 * input as approved (a reviewer's edit replaces the model's input). A rejection becomes
 * the reviewer's words for the model; an expiry says that no one decided.
 */

import { HitlClient, type RequestFields, type RequestView } from "./client.js";

export interface ApprovalOptions<INPUT> {
  /** The card's headline for this call; default "<tool> with <input as JSON>". */
  summary?: (input: INPUT) => string;
  /** Request fields for every call (channel, approvers, risk, timeout, ...). */
  fields?: RequestFields;
  /** Seconds to wait for a decision; default the request's own deadline. */
  wait?: number;
}

/** The outcome of asking: the input to run with, or what to tell the model instead. */
export type Ruling<INPUT> =
  | { approved: true; input: INPUT; request: RequestView }
  | { approved: false; message: string; request: RequestView };

export function defaultSummary(name: string, input: unknown): string {
  const shown = JSON.stringify(input ?? {});
  return `${name} with ${shown.length > 300 ? `${shown.slice(0, 297)}...` : shown}`;
}

/** What the model reads when the call will not run. */
export function refusalMessage(view: RequestView): string {
  const d = view.decision;
  if (view.status === "expired") {
    return d?.comment ?? `No one decided on ${view.action} in time; nobody said no, but it did not run.`;
  }
  const by = d?.by.length ? ` by ${d.by.join(", ")}` : "";
  const why = d?.comment ? `: ${d.comment}` : " (no reason given)";
  return `The reviewer ${view.status === "cancelled" ? "withdrew" : view.status} ${view.action}${by}${why}. It did not run.`;
}

function asInput<INPUT>(params: Record<string, unknown>): INPUT {
  return params as INPUT;
}

/** File the call, wait for Slack, and rule on it. */
export async function ask<INPUT>(
  client: HitlClient,
  name: string,
  callId: string,
  input: INPUT,
  options: ApprovalOptions<INPUT> = {},
  keyPrefix = "tool",
): Promise<Ruling<INPUT>> {
  const params = (typeof input === "object" && input !== null ? input : { input }) as Record<string, unknown>;
  const filed = await client.request(name, (options.summary ?? ((i) => defaultSummary(name, i)))(input), {
    mode: "gate",
    ...options.fields,
    params,
    idempotency_key: `${keyPrefix}:${callId}`,
  });
  const view = await client.wait(filed.id, options.wait === undefined ? {} : { timeout: options.wait });
  if (view.decision?.approved) return { approved: true, input: asInput<INPUT>(view.decision.params), request: view };
  return { approved: false, message: refusalMessage(view), request: view };
}

/**
 * Run `run` once for an approved request: recorded as started first, so a retried step or a
 * restarted process never runs it twice (it is told the outcome is unknown instead).
 */
export async function runOnce<OUTPUT>(
  client: HitlClient,
  request: RequestView,
  run: () => Promise<OUTPUT>,
): Promise<OUTPUT | string> {
  if (!(await client.startExecution(request.id))) {
    return `${request.action} was approved and already started before (request ${request.id}). ` +
      "Outcome unknown: check before retrying.";
  }
  try {
    const out = await run();
    await client.finishExecution(request.id, true);
    return out;
  } catch (exc) {
    await client.finishExecution(request.id, false);
    throw exc;
  }
}
