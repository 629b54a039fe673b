/**
 * The `walsync` command line; it lives in `cli/` (`cli/program.ts` builds it, one module per
 * command in `cli/commands/`). This module is its public face for `main.ts` and the tests.
 * @module
 */
export { reportError, runCli, version } from "./program.ts";
export { isInteractive, parseDuration, parseTarget } from "./options.ts";
