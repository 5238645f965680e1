/** Deterministic PRNG shared by the tests (the demo's): a failing random case replays from its seed. */
export { seededRandom } from "../../cluster/demo/seededRandom.ts";
