/**
 * Every refusal of the API as a class, so an agent can tell its own typo (422, naming the
 * field) from a missing key (401) or a request that is already final (409); and the two
 * ends of a decision an agent must not act on, kept apart: a reviewer said no
 * (`RejectedError`) is not the same as nobody decided in time (`ExpiredError`).
 */

import type { components } from "./schema.js";

type ErrorBody = components["schemas"]["ErrorBody"];
type RequestView = components["schemas"]["RequestView"];

/** Any answer of the API other than success: its status, message and the field at fault. */
export class HitlError extends Error {
  readonly status: number;
  /** The field the server names (`timeout`, `items.2.params`, `Authorization`, `id`), if any. */
  readonly field: string | undefined;

  constructor(status: number, message: string, field?: string) {
    super(field ? `${message} (field: ${field})` : message);
    this.name = new.target.name;
    this.status = status;
    this.field = field;
  }
}

/** 400, 408, 413, 422: the input is at fault; `field` names it. Fix it, do not retry as is. */
export class InvalidRequestError extends HitlError {}

/** 401: missing, wrong or revoked API key, or no keys configured on the server. */
export class AuthenticationError extends HitlError {}

/** 403: the key may not file this action (`field` is `action` or `items.N.action`). */
export class ForbiddenError extends HitlError {}

/** 404: unknown id, or a request another key filed (the server does not say which). */
export class NotFoundError extends HitlError {}

/** 409: already final (cancel), or the tool call already started (execution). */
export class ConflictError extends HitlError {}

/** 429 or 503: retry after `retryAfter` seconds (the client already retried reads). */
export class RetryLaterError extends HitlError {
  readonly retryAfter: number;

  constructor(status: number, message: string, retryAfter: number, field?: string) {
    super(status, message, field);
    this.retryAfter = retryAfter;
  }
}

/** 429: this key is over its rate. */
export class RateLimitedError extends RetryLaterError {}

/** 503: Redis unreachable or the server busy; nothing was recorded. */
export class UnavailableError extends RetryLaterError {}

/** `wait()` ran out of time before the request was final: it is still pending. */
export class WaitTimeoutError extends Error {
  readonly request: RequestView;

  constructor(request: RequestView, seconds: number) {
    super(`request ${request.id} is still ${request.status} after ${seconds} s; wait again or cancel it`);
    this.name = "WaitTimeoutError";
    this.request = request;
  }
}

/** A final decision the agent must not act on. `decision` says who and why. */
export class NotApprovedError extends Error {
  readonly request: RequestView;

  constructor(request: RequestView, message: string) {
    super(message);
    this.name = new.target.name;
    this.request = request;
  }

  /** The reviewer's words (or, expired, that no one decided in time). */
  get reason(): string {
    return this.request.decision?.comment ?? this.message;
  }
}

/** A reviewer said no (rejected, vetoed) or the request was withdrawn (cancelled). */
export class RejectedError extends NotApprovedError {
  constructor(request: RequestView) {
    const by = request.decision?.by.join(", ") || "a reviewer";
    const why = request.decision?.comment ? `: ${request.decision.comment}` : "";
    super(request, `${request.action} was ${request.status} by ${by}${why}`);
  }
}

/** Nobody decided before the deadline: not a rejection, but do not act on it. */
export class ExpiredError extends NotApprovedError {
  constructor(request: RequestView) {
    super(
      request,
      request.decision?.comment ??
        `No one decided on ${request.action} in time; nobody said no, but do not act on it.`,
    );
  }
}

const BY_STATUS: Record<number, typeof HitlError> = {
  400: InvalidRequestError,
  401: AuthenticationError,
  403: ForbiddenError,
  404: NotFoundError,
  408: InvalidRequestError,
  409: ConflictError,
  413: InvalidRequestError,
  422: InvalidRequestError,
};

/** The error class for an answer's status and body. */
export function errorFor(status: number, body: unknown, retryAfter: string | null): HitlError {
  const parsed = (typeof body === "object" && body !== null ? body : {}) as Partial<ErrorBody>;
  const message = typeof parsed.error === "string" ? parsed.error : `HTTP ${status}`;
  const field = typeof parsed.field === "string" ? parsed.field : undefined;
  if (status === 429 || status === 503) {
    const seconds = Number(retryAfter ?? "1");
    const wait = Number.isFinite(seconds) && seconds > 0 ? seconds : 1;
    return status === 429
      ? new RateLimitedError(status, message, wait, field)
      : new UnavailableError(status, message, wait, field);
  }
  const Kind = BY_STATUS[status] ?? HitlError;
  return new Kind(status, message, field);
}
