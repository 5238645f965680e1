/**
 * The spans of a match actor: an event's ingest on its owner, the owner's feed publish, the fan-out
 * on each node, a subscriber's join and the replays that serve it.
 *
 * Every `start*` returns undefined when tracing is off, before building any attribute, so the actor's
 * hot path is `const s = spans.startX(...); ...; s?.end(...)` and costs one boolean test per event.
 * Parents are always passed explicitly (ROOT_CONTEXT when there is none), never taken from the
 * active context: the actor's mailbox runs in whatever context happened to queue its work.
 */
import { type Context, ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { ATTR, MESSAGING_OP_PROCESS, MESSAGING_OP_SEND, MESSAGING_SYSTEM_NATS, type ReplaySource, SPAN, type SubscribeStart } from "./spanNames.ts";
import { OpenSpan, type TracingHandle } from "./spans.ts";

export type ActorRole = "owner" | "follower" | "stopped";

/** One event fanned out to this node's subscribers of its match. */
export class FanOutSpan {
  constructor(private readonly open: OpenSpan) {}

  /** `reached`: the subscribers the event was sent to. */
  end(reached: number): void {
    this.open.span.setAttribute(ATTR.subscribers, reached);
    this.open.end();
  }
}

/** One subscriber joining a match on this node, until it is live. */
export class SubscribeSpan {
  constructor(private readonly open: OpenSpan) {}

  get context(): Context {
    return this.open.context;
  }

  startsWith(how: SubscribeStart): void {
    this.open.span.setAttribute(ATTR.subscribeStart, how);
  }

  end(): void {
    this.open.end();
  }
}

/** Events replayed to subscribers, from the window in memory or from JetStream. */
export class ReplaySpan {
  constructor(private readonly open: OpenSpan) {}

  end(events: number, subscribers: number): void {
    this.open.span.setAttributes({ [ATTR.replayEvents]: events, [ATTR.replaySubscribers]: subscribers });
    this.open.end();
  }

  fail(err: unknown): void {
    this.open.fail(err);
  }
}

export class MatchSpans {
  constructor(private readonly tracing: TracingHandle) {}

  get enabled(): boolean {
    return this.tracing.enabled;
  }

  /** Owner: an event read back from JetStream, child of the store span its headers named. */
  startIngest(match: string, seq: number, stored: Context | undefined): OpenSpan | undefined {
    if (!this.tracing.enabled) return undefined;
    return OpenSpan.start(
      this.tracing.tracer,
      SPAN.ingest,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [ATTR.messagingSystem]: MESSAGING_SYSTEM_NATS,
          [ATTR.messagingOperation]: MESSAGING_OP_PROCESS,
          [ATTR.match]: match,
          [ATTR.eventSeq]: seq,
        },
      },
      stored ?? ROOT_CONTEXT,
    );
  }

  /** Owner: the event sent to the other nodes; pass the returned context to the feed publish. */
  startFeedPublish(match: string, seq: number, epoch: number, parent: Context | undefined): OpenSpan | undefined {
    if (!this.tracing.enabled) return undefined;
    return OpenSpan.start(
      this.tracing.tracer,
      SPAN.feedPublish,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [ATTR.messagingSystem]: MESSAGING_SYSTEM_NATS,
          [ATTR.messagingOperation]: MESSAGING_OP_SEND,
          [ATTR.match]: match,
          [ATTR.eventSeq]: seq,
          [ATTR.epoch]: epoch,
        },
      },
      parent ?? ROOT_CONTEXT,
    );
  }

  /**
   * One event to all of this node's subscribers of the match: one span per event per node, never
   * one per subscriber. On a follower it continues the owner's feed publish (a consumer span).
   */
  startFanOut(match: string, seq: number, role: ActorRole, parent: Context | undefined): FanOutSpan | undefined {
    if (!this.tracing.enabled) return undefined;
    return new FanOutSpan(
      OpenSpan.start(
        this.tracing.tracer,
        SPAN.fanOut,
        {
          kind: role === "owner" ? SpanKind.INTERNAL : SpanKind.CONSUMER,
          attributes: { [ATTR.match]: match, [ATTR.eventSeq]: seq, [ATTR.role]: role },
        },
        parent ?? ROOT_CONTEXT,
      ),
    );
  }

  /**
   * A subscriber joining: `after` is its resume id, undefined when it asked for a snapshot; `parent` is
   * the trace context the client's request carried, if any.
   */
  startSubscribe(match: string, after: number | undefined, role: ActorRole, parent?: Context): SubscribeSpan | undefined {
    if (!this.tracing.enabled) return undefined;
    const attributes = after === undefined ? { [ATTR.match]: match, [ATTR.role]: role } : { [ATTR.match]: match, [ATTR.role]: role, [ATTR.resumeAfter]: after };
    return new SubscribeSpan(OpenSpan.start(this.tracing.tracer, SPAN.subscribe, { kind: SpanKind.INTERNAL, attributes }, parent ?? ROOT_CONTEXT));
  }

  /** Events after `from` (through `through`, when known) replayed from `source`. */
  startReplay(match: string, source: ReplaySource, from: number, through: number | undefined, parent: Context | undefined): ReplaySpan | undefined {
    if (!this.tracing.enabled) return undefined;
    const attributes = { [ATTR.match]: match, [ATTR.replaySource]: source, [ATTR.replayFrom]: from };
    if (through !== undefined) Object.assign(attributes, { [ATTR.replayThrough]: through });
    return new ReplaySpan(OpenSpan.start(this.tracing.tracer, SPAN.replay, { kind: SpanKind.INTERNAL, attributes }, parent ?? ROOT_CONTEXT));
  }
}
