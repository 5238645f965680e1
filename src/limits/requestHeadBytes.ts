/**
 * The size of a request's head as it came on the wire, near enough: the request line plus every header
 * line. Bun's parser refuses heads over its own limit (16 KiB unless started with
 * `--max-http-header-size`) with a bare 431 before any handler runs; this lets the node hold a lower,
 * configurable line and answer it with the contract's JSON.
 *
 * Repeated headers reach us joined by ", " (2 bytes where the wire had a CRLF and the name again), so
 * the figure can be a little under the wire's; it never counts more than the client sent.
 */

/** ": " between name and value, CRLF after the value. */
const HEADER_LINE_OVERHEAD = 4;
/** " HTTP/1.1\r\n" after the target, the space after the method, and the CRLF ending the head. */
const REQUEST_LINE_OVERHEAD = 14;

/** The request-target of an absolute URL as the client sent it: path and query. */
function requestTarget(url: string): string {
  const schemeEnd = url.indexOf("//");
  const pathStart = schemeEnd === -1 ? -1 : url.indexOf("/", schemeEnd + 2);
  return pathStart === -1 ? "/" : url.slice(pathStart);
}

export function requestHeadBytes(method: string, url: string, headers: Headers): number {
  let total = method.length + requestTarget(url).length + REQUEST_LINE_OVERHEAD;
  // Bun's toJSON gives every header in one native call; the entries iterator makes a pair per header,
  // and this runs for every request. Set-Cookie alone comes as a list, one line each.
  const all = headers.toJSON() as Record<string, string | string[]>;
  for (const name in all) {
    const value = all[name]!;
    if (typeof value === "string") total += name.length + value.length + HEADER_LINE_OVERHEAD;
    else for (const v of value) total += name.length + v.length + HEADER_LINE_OVERHEAD;
  }
  return total;
}
