/**
 * Every NATS name Touchline uses, derived from one namespace so several clusters (or test runs) can share
 * a server. Documented in docs/api.md: producers may publish straight to `eventSubject(match)`.
 */
export interface Names {
  /** JetStream stream holding every match's events, one subject per match. */
  stream: string;
  eventSubject(match: string): string;
  eventWildcard: string;
  matchOfSubject(subject: string): string;
  /** Core NATS subject on which a match's owner publishes live events to the other nodes. */
  feedSubject(match: string): string;
  /** Request subject a node answers on for the matches it owns (sync, state). */
  nodeInbox(nodeId: string): string;
  membersBucket: string;
  ownersBucket: string;
  indexBucket: string;
}

export function names(namespace: string): Names {
  const eventPrefix = `${namespace}.events.`;
  return {
    stream: `${namespace}_events`,
    eventSubject: (match) => eventPrefix + match,
    eventWildcard: `${eventPrefix}*`,
    matchOfSubject: (subject) => subject.slice(eventPrefix.length),
    feedSubject: (match) => `${namespace}.feed.${match}`,
    nodeInbox: (nodeId) => `${namespace}.node.${nodeId}`,
    membersBucket: `${namespace}_members`,
    ownersBucket: `${namespace}_owners`,
    indexBucket: `${namespace}_index`,
  };
}
