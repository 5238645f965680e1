/**
 * What a Touchline stream delivers, typed. The wire format is in docs/design.md: every event's data is
 * JSON `{"match", "data", "ts", "state"?}`, a snapshot's is `{"match", "state"}`.
 */
import type { Json } from "../match/mergePatch.ts";

export type { Json };

/** The part of fetch the client uses; any fetch (browser, Bun, Node, undici, a wrapper) fits. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** Lifecycle of a stream, reported to `onStateChange`. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Event type → type of its `data`. Give your own map for typed events; unknown types default to `unknown`. */
export type EventDataMap = Record<string, unknown>;

/** One match event (any type but `snapshot` and the server's own `touchline.*`). */
export interface MatchEvent<TType extends string = string, TData = unknown> {
  type: TType;
  /** The SSE id (a composite id on multiplexed streams). Opaque: pass it back to resume. */
  id: string;
  match: string;
  data: TData;
  /** When the event was published, ms since the epoch. */
  ts: number;
  /** The event's JSON merge patch (RFC 7386) on the match state, when the server includes it. */
  state?: Json;
}

/** A match's whole state: sent first on a fresh stream, or instead of a replay the server cannot serve. */
export interface SnapshotEvent<TState = Record<string, Json>> {
  type: "snapshot";
  id: string;
  match: string;
  state: TState;
}

/** Events the server sends about the stream itself (types starting with `touchline.`). */
export interface ControlEvent {
  type: `touchline.${string}`;
  id: string;
  data: Json;
}

export type AnyStreamEvent<M extends EventDataMap, S> = { [K in keyof M & string]: MatchEvent<K, M[K]> }[keyof M & string] | SnapshotEvent<S> | ControlEvent;

// ---- the football convention (docs/design.md), used by the demo producer and the scoreboard page ----

export type Team = "home" | "away";
export type MatchStatus = "scheduled" | "live" | "half-time" | "full-time";

/** A match state under the football convention; any field may be missing, other fields are kept as they come. */
export type FootballState = Record<string, Json> & {
  home?: string;
  away?: string;
  homeScore?: number;
  awayScore?: number;
  minute?: number;
  status?: MatchStatus;
};

export interface FootballEventData {
  team?: Team;
  player?: string;
  minute?: number;
  /** One line for a feed. */
  text?: string;
}

/** A type alias, not an interface, so that it satisfies EventDataMap. */
export type FootballEvents = {
  kickoff: FootballEventData;
  goal: FootballEventData;
  card: FootballEventData;
  substitution: FootballEventData;
  halftime: FootballEventData;
  fulltime: FootballEventData;
  /** The clock moving in a quiet minute (the demo producer sends one when nothing else happened). */
  minute: FootballEventData;
};
