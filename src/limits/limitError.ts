/**
 * The error an abuse limit's refusal throws: an HttpError, so the app answers it like any other, that
 * also says which limit refused (for touchline_limited_total{limit}).
 */
import { HttpError, type ErrorCode } from "../errors/httpError.ts";
import type { LimitName } from "../telemetry/metricLabels.ts";

export class LimitError extends HttpError {
  constructor(
    readonly limit: LimitName,
    status: number,
    code: ErrorCode,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(status, code, message, headers);
  }
}

/**
 * Which limit an error reports, if any. The body and matches-per-stream limits predate this module and
 * throw plain HttpErrors, recognised by their codes.
 */
export function limitOf(err: HttpError): LimitName | undefined {
  if (err instanceof LimitError) return err.limit;
  if (err.status === 413 && err.code === "too_large") return "body_bytes";
  if (err.code === "too_many_matches") return "matches_per_stream";
  return undefined;
}
