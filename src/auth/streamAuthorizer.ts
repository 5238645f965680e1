/**
 * StreamAuthorizer: applies Access to reads that go through match actors (streams, multiplexed streams,
 * long polls). Before anything opens it refuses, as JSON, a match already known to be private; once a
 * stream is open it guards the matches the viewer may read only while public, and closes the stream
 * when its token expires, with a final event saying why. Every expiry shares one timer (ExpiryClock).
 */
import type { MatchSubscriber } from "../actors/subscriber.ts";
import { notReady } from "../errors/httpError.ts";
import type { SseStream } from "../stream/sseStream.ts";
import type { Access, Viewer } from "./access.ts";
import { expiredFrame, forbiddenFrame } from "./closingEvents.ts";
import type { ExpiryClock } from "./expiryClock.ts";
import { PrivateMatchGuard } from "./privateMatchGuard.ts";

/** Shared by every stream without an expiry: a node holds tens of thousands of streams. */
const NOTHING_TO_CANCEL = (): void => {};

/** What the authorizer needs of a match actor. */
export interface PrivacySource {
  readonly match: string;
  readonly isReady: boolean;
  readonly private: boolean;
  /** Resolves once the actor is ready. */
  snapshot(): Promise<{ private: boolean }>;
}

/** How long a read waits for a starting actor to learn whether its match is private. */
const PRIVACY_WAIT_MS = 5000;
/** Closing for lost authorization, counted in touchline_streams_closed_total{reason="auth_expired"}. */
const AUTH_CLOSE = "auth_expired";

async function privacyOf(actor: PrivacySource): Promise<boolean> {
  if (actor.isReady) return actor.private;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(notReady(`match ${actor.match} is still starting on this node`)), PRIVACY_WAIT_MS);
  });
  try {
    return (await Promise.race([actor.snapshot(), timedOut])).private;
  } finally {
    clearTimeout(timer);
  }
}

export class StreamAuthorizer {
  constructor(
    readonly access: Access,
    private readonly clock: ExpiryClock,
  ) {}

  /** The request's viewer (see Access.viewerOf); throws 401 for a bad token. */
  viewerOf(request: Request, url: URL): Promise<Viewer> {
    return this.access.viewerOf(request, url);
  }

  /**
   * Throws 401/403 when a match the viewer may not read privately is private. Waits for an actor's
   * readiness only when the answer matters (auth on, and the viewer's claim does not cover the match).
   */
  async authorizeRead(viewer: Viewer, actors: PrivacySource[]): Promise<void> {
    const unsure = actors.filter((a) => !this.access.mayReadPrivate(viewer, a.match));
    const privacy = await Promise.all(unsure.map(privacyOf));
    for (const [i, a] of unsure.entries()) this.access.requireRead(viewer, a.match, privacy[i]!);
  }

  /** authorizeRead, plus: a stream needs a token that has not expired yet. */
  async authorizeStream(viewer: Viewer, actors: PrivacySource[]): Promise<void> {
    this.access.requireUnexpiredForStream(viewer);
    await this.authorizeRead(viewer, actors);
  }

  /** The subscription to join `actor` with: guarded when the viewer may read the match only while public. */
  guard(viewer: Viewer, actor: PrivacySource, sub: MatchSubscriber, stream: SseStream): MatchSubscriber {
    if (this.access.mayReadPrivate(viewer, actor.match)) return sub;
    return new PrivateMatchGuard(
      sub,
      () => actor.private,
      () => {
        stream.writeText(forbiddenFrame(actor.match));
        stream.close(AUTH_CLOSE);
      },
    );
  }

  /** Closes `stream` with a `touchline.expired` event when the viewer's token expires. Returns a cancel. */
  closeAtExpiry(viewer: Viewer, stream: SseStream): () => void {
    if (viewer.kind !== "token" || viewer.token.expiresAt === undefined) return NOTHING_TO_CANCEL;
    const expiresAt = viewer.token.expiresAt;
    return this.clock.schedule(expiresAt, () => {
      // close() flushes what is queued first, so the final event is the last thing the client reads.
      stream.writeText(expiredFrame(expiresAt));
      stream.close(AUTH_CLOSE);
    });
  }
}
