/** An HTTP error answer from a Touchline node: `{"error": "<code>", "message": "<what to do>"}`. */
export class TouchlineHttpError extends Error {
  override readonly name = "TouchlineHttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** From `Retry-After` (429, 503), in milliseconds. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }

  /** Statuses where asking again unchanged cannot help: the stream closes instead of reconnecting. */
  get isFatal(): boolean {
    return FATAL_STATUSES.has(this.status);
  }
}

/**
 * The node refused the stream in the form browsers survive (`event: touchline.refused`, then the end of
 * the stream): it is full, draining, not connected, or this client is over a rate limit. The stream
 * comes back after `retryAfterMs`, through the balancer, perhaps on another node.
 */
export class TouchlineRefusedError extends Error {
  override readonly name = "TouchlineRefusedError";
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

/** The server answered, but not with what the protocol promises (wrong content type, malformed JSON). */
export class TouchlineProtocolError extends Error {
  override readonly name = "TouchlineProtocolError";
}

const FATAL_STATUSES = new Set([400, 401, 403, 404, 405, 410, 413, 414, 415, 422]);
const MS_PER_SECOND = 1000;

export async function httpErrorFrom(res: Response): Promise<TouchlineHttpError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: unknown; message?: unknown };
    if (typeof body.error === "string") code = body.error;
    if (typeof body.message === "string") message = body.message;
  } catch {
    // Not a JSON error body (a proxy's HTML page): keep the status line.
  }
  return new TouchlineHttpError(res.status, code, message, retryAfterMs(res.headers.get("retry-after")));
}

/** `Retry-After` as delay-seconds or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * MS_PER_SECOND;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
