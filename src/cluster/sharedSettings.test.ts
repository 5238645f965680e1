import { describe, expect, test } from "bun:test";
import { describeDifferences, settingDifferences } from "./sharedSettings.ts";

const here = { RETENTION: 86_400_000, MAX_STATE_BYTES: 65_536, TOKENS: "required" };

describe("settingDifferences", () => {
  test("names every setting both sides announce with another value, in this node's order", () => {
    expect(settingDifferences(here, { TOKENS: "off", RETENTION: 3_600_000, MAX_STATE_BYTES: 65_536 })).toEqual([
      { setting: "RETENTION", here: 86_400_000, there: 3_600_000 },
      { setting: "TOKENS", here: "required", there: "off" },
    ]);
  });

  test("equal values, an entry without settings, and settings only one side knows are no difference", () => {
    expect(settingDifferences(here, { ...here })).toEqual([]);
    expect(settingDifferences(here, undefined)).toEqual([]);
    expect(settingDifferences(here, { RETENTION: 86_400_000, NEWER_SETTING: 1 })).toEqual([]);
    expect(settingDifferences({ ...here, OLDER: true }, here)).toEqual([]);
  });

  test("a number and its text are different values (announced values are typed)", () => {
    expect(settingDifferences(here, { MAX_STATE_BYTES: "65536" })).toEqual([{ setting: "MAX_STATE_BYTES", here: 65_536, there: "65536" }]);
  });
});

test("describeDifferences reads as one line, theirs before ours", () => {
  expect(
    describeDifferences([
      { setting: "RETENTION", here: 86_400_000, there: 3_600_000 },
      { setting: "TOKENS", here: "required", there: "off" },
    ]),
  ).toBe("RETENTION 3600000 there, 86400000 here; TOKENS off there, required here");
});
