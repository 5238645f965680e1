/**
 * Checking what a subscriber received against what it should have: every expected id exactly once, in
 * increasing order. Differences are reported as compact id runs so a failure message stays readable.
 */

/** Ids as compact runs ("4-24,30"), so a failure message stays readable. */
export function runs(ids: string[]): string {
  const out: string[] = [];
  let start = -1;
  let prev = -1;
  for (const n of ids.map(Number)) {
    if (start !== -1 && n === prev + 1) {
      prev = n;
      continue;
    }
    if (start !== -1) out.push(start === prev ? `${start}` : `${start}-${prev}`);
    start = prev = n;
  }
  if (start !== -1) out.push(start === prev ? `${start}` : `${start}-${prev}`);
  return out.join(",");
}

/** How a delivery differs from the expected ids, compactly: what was missed, doubled, unexpected or reordered. */
export function compareDelivery(expected: string[], got: string[]): { exact: boolean; got: number; missing: string; duplicated: string; unexpected: string; outOfOrder: boolean } {
  const gotSet = new Set(got);
  const expectedSet = new Set(expected);
  const missing = expected.filter((id) => !gotSet.has(id));
  const duplicated = got.filter((id, i) => got.indexOf(id) !== i);
  const unexpected = got.filter((id) => !expectedSet.has(id));
  const outOfOrder = got.some((id, i) => i > 0 && Number(id) <= Number(got[i - 1]));
  const exact = missing.length === 0 && duplicated.length === 0 && unexpected.length === 0 && !outOfOrder;
  return { exact, got: got.length, missing: runs(missing), duplicated: runs(duplicated), unexpected: runs(unexpected), outOfOrder };
}
