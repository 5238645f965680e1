/** The lean id reader of the memory tests sees the same ids and frames however the bytes are cut. */
import { expect, test } from "bun:test";
import { IdLineScanner } from "../helpers/idStream.ts";

const STREAM =
  "retry: 1000\n\n" +
  "id: 1@t\nevent: snapshot\ndata: {}\n\n" +
  ": ping\n\n" +
  `id: 2@t\nevent: tick\ndata: ${"x".repeat(700)}\n\n` +
  `id: 3@t\nevent: tick\ndata: ${"y".repeat(70)}\n\n`;

function scan(chunks: Uint8Array[]): string[] {
  const out: string[] = [];
  const s = new IdLineScanner((field, value) => out.push(`${field}=${value}`));
  for (const c of chunks) s.feed(c);
  return out;
}

test("fields and frame ends, whole or cut at any byte", () => {
  const bytes = new TextEncoder().encode(STREAM);
  const whole = scan([bytes]);
  expect(whole).toEqual(["end=", "id=1@t", "event=snapshot", "end=", "end=", "id=2@t", "event=tick", "end=", "id=3@t", "event=tick", "end="]);
  for (let cut = 1; cut < bytes.length; cut++) expect(scan([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(whole);
  expect(scan(Array.from(bytes, (b) => Uint8Array.of(b)))).toEqual(whole);
});
