import { expect, test } from "bun:test";
import type { LogFields } from "./logger.ts";
import { RepeatedWarning } from "./repeatedWarning.ts";

test("the first occurrence is logged, the next within the interval counted, the one after it logged with the count", () => {
  const lines: [string, LogFields | undefined][] = [];
  let now = 0;
  const warning = new RepeatedWarning({ warn: (msg, fields) => lines.push([msg, fields]) }, "publish refused", 1000, () => now);
  warning.note({ match: "a" });
  for (let i = 0; i < 500; i++) {
    now += 1;
    warning.note({ match: "b" });
  }
  expect(lines).toEqual([["publish refused", { match: "a" }]]);
  now = 1000;
  warning.note({ match: "c" });
  expect(lines[1]).toEqual(["publish refused", { match: "c", alsoSinceLastLine: 500 }]);
  // Quiet for a while: the next one stands alone again.
  now = 5000;
  warning.note({ match: "d" });
  expect(lines[2]).toEqual(["publish refused", { match: "d" }]);
});
