import { expect, test } from "bun:test";
import { isCompleteAnswer, shortJson } from "./errors.ts";

test("shortJson: the JSON with its status and final headers, marked complete", async () => {
  const answer = shortJson({ id: "12@ab" }, 201);
  expect(answer.status).toBe(201);
  expect(answer.headers.get("content-type")).toBe("application/json; charset=utf-8");
  expect(answer.headers.get("vary")).toBe("Accept-Encoding");
  expect(await answer.json()).toEqual({ id: "12@ab" });
  expect(isCompleteAnswer(answer)).toBe(true);
  expect(isCompleteAnswer(new Response("{}"))).toBe(false);
});

test("shortJson answers share no headers: what is set on one (its CORS headers) stays on it", () => {
  const first = shortJson({ id: "1@ab" }, 201);
  first.headers.set("Access-Control-Allow-Origin", "https://a.example");
  first.headers.set("Vary", "Accept-Encoding, Origin");
  const next = shortJson({ id: "2@ab" }, 201);
  expect(next.headers.get("access-control-allow-origin")).toBeNull();
  expect(next.headers.get("vary")).toBe("Accept-Encoding");
});
