/**
 * Checking what a subscriber received against what it should have: every expected id exactly once, in
 * increasing order. Differences are reported as compact id runs so a failure message stays readable.
 */
import { seqOf, tagOf } from "../helpers/eventIds.ts";

/**
 * Ids (`<seq>@<tag>`) as compact runs of consecutive sequences under one tag ("4-24@k1,30@k1"), so a
 * failure message stays readable.
 */
function runs(ids: string[]): string {
  const out: string[] = [];
  let start = -1;
  let prev = -1;
  let tag = "";
  const flush = (): void => {
    if (start !== -1) out.push(`${start === prev ? `${start}` : `${start}-${prev}`}@${tag}`);
  };
  for (const id of ids) {
    const n = seqOf(id);
    const t = tagOf(id);
    if (start !== -1 && n === prev + 1 && t === tag) {
      prev = n;
      continue;
    }
    flush();
    start = prev = n;
    tag = t;
  }
  flush();
  return out.join(",");
}

/**
 * How a delivery differs from the expected ids, compactly: what was missed, doubled, unexpected or
 * reordered. Ids are compared whole (sequence and tag); order is by sequence.
 */
export function compareDelivery(
  expected: string[],
  got: string[],
): { exact: boolean; got: number; missing: string; duplicated: string; unexpected: string; outOfOrder: boolean } {
  const gotSet = new Set(got);
  const expectedSet = new Set(expected);
  const missing = expected.filter((id) => !gotSet.has(id));
  const duplicated = got.filter((id, i) => got.indexOf(id) !== i);
  const unexpected = got.filter((id) => !expectedSet.has(id));
  const outOfOrder = got.some((id, i) => i > 0 && seqOf(id) <= seqOf(got[i - 1]!));
  const exact = missing.length === 0 && duplicated.length === 0 && unexpected.length === 0 && !outOfOrder;
  return { exact, got: got.length, missing: runs(missing), duplicated: runs(duplicated), unexpected: runs(unexpected), outOfOrder };
}
