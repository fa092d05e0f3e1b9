/**
 * What the tests share. The pytest harness (tests/typescript/) starts a real `hitl bot`, a
 * worker and the Slack stand-in, and a reviewer who clicks each card as the request's
 * `run_id` tells it: `approve`, `edit <json>` (approve with these params), `reject <reason>`,
 * `expire` and `hold` (click nothing). HITL_API_URL and HITL_API_KEY point here.
 */

import { HitlClient } from "../src/index.js";

export const client = new HitlClient();


let n = 0;
/** A value no other call of this run uses (idempotency keys). */
export function unique(label: string): string {
  n += 1;
  return `${label}-${process.pid}-${n}-${Date.now()}`;
}
