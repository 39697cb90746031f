/**
 * The server's logger is the one shared with the shim, `common/logger.ts`; this re-export keeps
 * every server module importing its leaf `./logger.js` (STYLE.md §2).
 */
export { createLogger, type Logger, type LogLevel, stderrIsJournal } from "../common/logger.js";
