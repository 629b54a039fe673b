/**
 * The settings table (`src/support/settings.ts`) is what the config parser and the watcher's defaults
 * read: a config that sets nothing gets the table's defaults, and its bounds are enforced with
 * the YAML name and the line of the value.
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/service/config.ts";
import { databaseSettings, settingDefaults, settings } from "../../src/support/settings.ts";
import { watchDefaults } from "../../src/watch/mod.ts";

const minimal = "databases:\n  - path: /x/a.db\n    bucket: file:///b\n";

Deno.test("settings: a config that sets nothing gets every default of the table", () => {
  const config = parseConfig(minimal, "walsync.yml", () => undefined);
  const defaults = settingDefaults();
  for (const s of databaseSettings) {
    assert.equal(config.databases[0][s.key as never], defaults[s.key]);
  }
  assert.equal(config.maxConcurrentUploads, defaults.maxConcurrentUploads);
  for (const [key, value] of Object.entries(watchDefaults)) {
    assert.equal(value, defaults[key as keyof typeof defaults]);
  }
});

Deno.test("settings: each bound is enforced at the top level and per database, naming the line", () => {
  for (const s of settings.filter((s) => s.min > 0)) {
    const low = s.kind === "duration" ? `${s.min - 1}ms` : String(s.min - 1);
    const top = `${s.yaml}: ${low}\n${minimal}`;
    assert.throws(() => parseConfig(top, "w.yml", () => undefined), {
      message: `w.yml:1: ${s.yaml} must be ${s.bound}`,
    });
    if (s.scope === "database") {
      const inDb = `${minimal}    ${s.yaml}: ${low}\n`;
      assert.throws(() => parseConfig(inDb, "w.yml", () => undefined), {
        message: `w.yml:4: ${s.yaml} must be ${s.bound}`,
      });
    }
  }
});
