/**
 * What a JetStream push delivery's reply subject says about the message: JetStream names its ack
 * subject after the delivery, `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery seq>.
 * <timestamp ns>.<pending>` (nats-server 2.9), or with a domain and an account hash after `$JS.ACK` and
 * a random token at the end (later servers). Read here so a reader does not build a message object per
 * delivery to learn two sequences.
 */

export interface DeliveryReply {
  /** The message's sequence in the stream. */
  streamSeq: number;
  /** The consumer's count of deliveries: each is the previous plus one, else some were lost. */
  deliverySeq: number;
  /** How many times this message was delivered (1 without acks). */
  deliveredCount: number;
  /** Nanoseconds since the epoch, as a float: exact to well under a microsecond. */
  timestampNanos: number;
  /** Messages the consumer still had to deliver after this one. */
  pending: number;
}

const PREFIX = "$JS.ACK.";
/** Tokens of the older form: $JS ACK stream consumer delivered sseq dseq ts pending. */
const V1_TOKENS = 9;
/** Tokens of the newer form, with domain and account hash, and possibly a random token after pending. */
const V2_TOKENS = 11;
const V2_TOKENS_WITH_TOKEN = 12;

/** Undefined when `reply` is not a JetStream delivery's ack subject. */
export function parseDeliveryReply(reply: string | undefined): DeliveryReply | undefined {
  if (!reply?.startsWith(PREFIX)) return undefined;
  const tokens = reply.split(".");
  const at = tokens.length === V1_TOKENS ? 4 : tokens.length === V2_TOKENS || tokens.length === V2_TOKENS_WITH_TOKEN ? 6 : -1;
  if (at < 0) return undefined;
  const deliveredCount = Number(tokens[at]);
  const streamSeq = Number(tokens[at + 1]);
  const deliverySeq = Number(tokens[at + 2]);
  const timestampNanos = Number(tokens[at + 3]);
  const pending = Number(tokens[at + 4]);
  // The timestamp is past 2^53 ns (it only needs to be right to the millisecond); the counts are not.
  if (![deliveredCount, streamSeq, deliverySeq, pending].every(Number.isSafeInteger) || !Number.isFinite(timestampNanos)) return undefined;
  return { streamSeq, deliverySeq, deliveredCount, timestampNanos, pending };
}
