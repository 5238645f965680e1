/**
 * Stream readers in a process of their own: `readIdsElsewhere` starts a Bun child that opens `readers`
 * streams of a URL and reads ids until each has `count` (helpers/idStream.ts), and answers their results.
 *
 * Why a child: a test that proves fast readers are never cut must read at full speed, and the test
 * runner's own process is no place for that. In a whole-suite run it carries the heap of hundreds of
 * tests before (a collection pause there is a pause of every reader) and it also runs the publishers;
 * a reader that stalls ~100 ms behind a flood of 63 KiB events passes the node's ceiling and is rightly
 * cut. In its own process, a reader is what the test claims it is: a client that keeps reading.
 *
 * Run directly: `bun test/helpers/idReaders.ts <url> <readers> <count> [idleMs]`; prints `open` once every
 * stream's head arrived, then one JSON line: the results, in the order the streams were opened.
 */
import { readIds, type IdStreamResult } from "./idStream.ts";

const OPEN_LINE = "open";

export interface ElsewhereReaders {
  /** Resolves once every stream's head arrived. */
  opened: Promise<void>;
  /** Every reader's result once all stopped. */
  results: Promise<IdStreamResult[]>;
}

export function readIdsElsewhere(url: string, readers: number, count: number, idleMs = 0): ElsewhereReaders {
  const child = Bun.spawn([process.execPath, import.meta.path, url, String(readers), String(count), String(idleMs)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  let markOpen!: () => void;
  let fail!: (e: Error) => void;
  const opened = new Promise<void>((resolve, reject) => {
    markOpen = resolve;
    fail = reject;
  });
  const results = (async (): Promise<IdStreamResult[]> => {
    const lines: string[] = [];
    let buffered = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === OPEN_LINE) markOpen();
        else lines.push(line);
      }
    }
    const code = await child.exited;
    const last = lines.at(-1);
    if (code !== 0 || last === undefined) {
      const err = new Error(`the reader process exited ${code} without results`);
      fail(err);
      throw err;
    }
    return JSON.parse(last) as IdStreamResult[];
  })();
  results.catch(() => {});
  return { opened, results };
}

if (import.meta.main) {
  const [url, readers, count, idleMs] = process.argv.slice(2);
  if (!url || !readers || !count) {
    console.error("usage: bun test/helpers/idReaders.ts <url> <readers> <count> [idleMs]");
    process.exit(2);
  }
  const want = Number(count);
  let open = 0;
  const n = Number(readers);
  const all = Array.from({ length: n }, () =>
    readIds(url, {
      stopWhen: (ids) => ids.length >= want,
      idleMs: Number(idleMs ?? 0),
      onOpen: () => {
        if (++open === n) console.log(OPEN_LINE);
      },
    }),
  );
  console.log(JSON.stringify(await Promise.all(all)));
}
