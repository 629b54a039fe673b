/**
 * integrity_check on a cold and a warm file, with and without the page-cache warming that
 * restore runs beside it (`Deno.copyFile(path, "/dev/null")`). The cache is dropped for that one
 * file with `dd iflag=nocache count=0`. Linux only.
 *
 *   deno run -A bench/cold_check_experiment.ts some.db
 * @module
 */
import { integrityCheck } from "../src/database.ts";
const path = Deno.args[0] ?? "/tmp/pfexp/t.db";
async function drop() {
  await new Deno.Command("dd", { args: [`if=${path}`, "iflag=nocache", "count=0"], stderr: "null" })
    .output();
}
async function run(label: string, cold: boolean, prefetch: boolean) {
  if (cold) await drop();
  const t0 = performance.now();
  let pf: Promise<void> | undefined;
  if (prefetch) {
    pf = Deno.copyFile(path, "/dev/null");
    await new Promise((r) => setTimeout(r, 0));
  }
  const v = integrityCheck(path);
  const t1 = performance.now();
  await pf;
  const t2 = performance.now();
  console.log(label, v, `check ${(t1 - t0).toFixed(0)} ms, all ${(t2 - t0).toFixed(0)} ms`);
}
for (let i = 0; i < 2; i++) {
  await run("warm, no prefetch", false, false);
  await run("warm, prefetch   ", false, true);
  await run("cold, no prefetch", true, false);
  await run("cold, prefetch   ", true, true);
}
