import { describe, expect, test } from "vitest";
import { createLogger, stderrIsJournal } from "./logger.js";

describe("journald priorities", () => {
  test("with syslogPrefix each line starts with its priority, children too", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", syslogPrefix: true, write: (l) => lines.push(l) });
    log.error("e");
    log.warn("w");
    log.child({ component: "x" }).info("i");
    log.debug("d");
    expect(lines.map((l) => l.slice(0, 4))).toEqual(["<3>{", "<4>{", "<6>{", "<7>{"]);
    expect(JSON.parse((lines[2] as string).slice(3))).toMatchObject({ msg: "i", component: "x" });
  });

  test("without it, plain JSON lines", () => {
    const lines: string[] = [];
    createLogger({ write: (l) => lines.push(l) }).error("e");
    expect(lines[0]?.startsWith("{")).toBe(true);
  });

  test("JOURNAL_STREAM must name this process's stderr: an inherited one does not count", () => {
    expect(stderrIsJournal({})).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: "8:12345" })).toBe(false);
  });
});
