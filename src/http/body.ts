/**
 * Reads a request body with a hard byte limit, whether or not it declares a length: a chunked body is
 * cut off as soon as it passes the limit instead of being buffered whole.
 */
import { HttpError } from "./errors.ts";

export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "send the event as Content-Type: application/json");
  }
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new HttpError(413, "too_large", `the body must be at most ${maxBytes} bytes`);
  }
  // A declared length within the limit is what the server reads, no more: one native read of the
  // whole body (a stream reader per request was a fifth of a publish's cost).
  if (Number.isFinite(declared)) return parseJson(await request.text());
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new HttpError(413, "too_large", `the body must be at most ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  return parseJson(new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(chunks)));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_json", "the body is not valid JSON");
  }
}
