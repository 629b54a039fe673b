/**
 * The config file, in process: a valid walsync.yml with its defaults and `${ENV}` expansion, and
 * each mistake a usage error naming its line (`parseConfig`). The CLI's handling of the file
 * (`explain --config`, relative paths) is tested end to end in `test/e2e/production_test.ts`.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/service/config.ts";
import { WalsyncError } from "../../src/support/errors.ts";

/** Parses `text` as walsync.yml with only `env` set; returns the usage error message. */
function configError(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfig(text, "walsync.yml", (n) => env[n]);
  } catch (err) {
    assert.ok(err instanceof WalsyncError, `not a WalsyncError: ${err}`);
    assert.equal(err.kind, "usage");
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  throw new Error(`config was accepted:\n${text}`);
}

Deno.test("config: a valid walsync.yml parses, with defaults and ${ENV} expansion", () => {
  const minimal = parseConfig(
    "databases:\n  - path: app.db\n    bucket: file:///srv/backups\n",
    "/etc/walsync/walsync.yml",
    () => undefined,
  );
  assert.equal(minimal.metricsAddr, undefined);
  assert.equal(minimal.maxConcurrentUploads, 8);
  assert.equal(minimal.databases.length, 1);
  const db = minimal.databases[0];
  assert.equal(db.path, "/etc/walsync/app.db", "relative paths resolve beside the file");
  assert.equal(db.name, "app.db");
  assert.equal(db.syncIntervalMs, 1000);
  assert.equal(db.snapshotIntervalMs, 24 * 3600_000);
  assert.equal(db.checkpointBytes, 4 * 1024 * 1024);
  assert.equal(db.retentionMs, 0);
  assert.equal(db.drillIntervalMs, 0);
  assert.deepEqual(db.replicas.map((r) => r.bucket), ["file:///srv/backups"]);
  assert.equal(db.replicas[0].s3.credentials, undefined);

  const env: Record<string, string> = {
    R2_ENDPOINT: "https://acct.r2.example.com",
    KEY_ID: "AKIDEXAMPLE",
    SECRET: "s3cr3t/with+chars",
  };
  const full = parseConfig(
    `# production; \${NOT_SET} in a comment is not expanded
sync-interval: 2s
retention: 7d
drill-interval: 1h
metrics-addr: 127.0.0.1:9187
max-uploads: 3
databases:
  - path: /var/lib/app/app.db
    replicas:
      - bucket: s3://backups-prod/app
        endpoint: \${R2_ENDPOINT}
        region: auto
        access-key-id: \${KEY_ID}
        secret-access-key: \${SECRET}
        sse: aws:kms
        sse-kms-key-id: alias/walsync # or \${KMS_KEY}
      - bucket: file:///srv/backups
  - path: /var/lib/queue/queue.db
    name: jobs.db
    sync-interval: 250ms
    snapshot-interval: 1h
    retention: 0
    checkpoint-size: 8192
    bucket: backups-prod
    endpoint: http://minio:9000/\${KEY_ID}
`,
    "walsync.yml",
    (n) => env[n],
  );
  assert.equal(full.metricsAddr, "127.0.0.1:9187");
  assert.equal(full.maxConcurrentUploads, 3);
  const [app, jobs] = full.databases;
  assert.equal(app.syncIntervalMs, 2000);
  assert.equal(app.retentionMs, 7 * 86_400_000);
  assert.equal(app.drillIntervalMs, 3_600_000);
  assert.equal(app.snapshotIntervalMs, 24 * 3600_000);
  assert.deepEqual(app.replicas[0].s3, {
    endpoint: "https://acct.r2.example.com",
    region: "auto",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "s3cr3t/with+chars" },
    sse: "aws:kms",
    sseKmsKeyId: "alias/walsync",
  });
  assert.equal(app.replicas[1].bucket, "file:///srv/backups");
  assert.equal(jobs.name, "jobs.db");
  assert.equal(jobs.path, "/var/lib/queue/queue.db");
  assert.equal(jobs.syncIntervalMs, 250);
  assert.equal(jobs.snapshotIntervalMs, 3_600_000);
  assert.equal(jobs.retentionMs, 0, "a database's own setting beats the default");
  assert.equal(jobs.drillIntervalMs, 3_600_000, "defaults apply to every database");
  assert.equal(jobs.checkpointBytes, 8192);
  assert.deepEqual(jobs.replicas, [{
    bucket: "backups-prod",
    s3: { endpoint: "http://minio:9000/AKIDEXAMPLE" },
  }]);
});

Deno.test("config: each mistake is a usage error naming its line", () => {
  const cases: [string, string, RegExp, Record<string, string>?][] = [
    [
      "unknown top-level key",
      "sync-interval: 1s\nsnapshot-intervall: 1h\ndatabases:\n  - path: a.db\n    bucket: file:///b\n",
      /^walsync\.yml:2: .*unknown top-level setting "snapshot-intervall"/,
    ],
    [
      "unknown database key",
      "databases:\n  - path: a.db\n    bucket: file:///b\n    retension: 1h\n",
      /^walsync\.yml:4: .*"retension"/,
    ],
    [
      "unknown replica key",
      "databases:\n  - path: a.db\n    replicas:\n      - bucket: file:///b\n        secret: x\n",
      /^walsync\.yml:5: .*"secret"/,
    ],
    [
      "bad duration in a database",
      "databases:\n  - path: a.db\n    bucket: file:///b\n    sync-interval: 5 seconds\n",
      /^walsync\.yml:4: "5 seconds" is not a duration/,
    ],
    [
      "bad duration at the top",
      "sync-interval: 1s\nretention: forever\ndatabases:\n  - path: a.db\n    bucket: file:///b\n",
      /^walsync\.yml:2: "forever" is not a duration/,
    ],
    [
      "bad bucket",
      "databases:\n  - path: a.db\n    replicas:\n      - bucket: file:///b\n      - bucket: s3://Bad_Bucket/p\n",
      /^walsync\.yml:5: .*"Bad_Bucket" is not a valid bucket name/,
    ],
    [
      "bucket with an unknown scheme",
      "databases:\n  - path: a.db\n    bucket: gs://backups\n",
      /^walsync\.yml:3: .*unknown scheme/,
    ],
    [
      "missing replicas",
      "databases:\n  - path: a.db\n    bucket: file:///b\n  - path: b.db\n    sync-interval: 1s\n",
      /^walsync\.yml:4: database b\.db needs replicas/,
    ],
    [
      "empty replicas",
      "databases:\n  - path: a.db\n    replicas: []\n",
      /^walsync\.yml:(2|3): database a\.db needs replicas/,
    ],
    [
      "sse value",
      "databases:\n  - path: a.db\n    replicas:\n      - bucket: s3://good-bucket/p\n        sse: AES\n",
      /^walsync\.yml:5: sse "AES" must be AES256 or aws:kms/,
    ],
    [
      "sse-kms-key-id without aws:kms",
      "databases:\n  - path: a.db\n    replicas:\n      - bucket: s3://good-bucket/p\n        sse: AES256\n        sse-kms-key-id: k\n",
      /^walsync\.yml:6: sse-kms-key-id needs sse: aws:kms/,
    ],
    [
      "duplicate names",
      "databases:\n  - path: /x/a.db\n    bucket: file:///b\n  - path: /y/a.db\n    bucket: file:///c\n",
      /^walsync\.yml:4: database name a\.db is used twice/,
    ],
    [
      "duplicate names through name:",
      "databases:\n  - path: /x/a.db\n    bucket: file:///b\n  - path: /y/b.db\n    name: a.db\n    bucket: file:///c\n",
      /^walsync\.yml:(4|5): database name a\.db is used twice/,
    ],
    [
      "missing environment variable",
      "databases:\n  - path: a.db\n    replicas:\n      - bucket: s3://good-bucket/p\n        endpoint: ${NOPE_ENDPOINT}\n",
      /^walsync\.yml:5: environment variable NOPE_ENDPOINT is not set/,
    ],
    [
      "invalid YAML (indentation)",
      "databases:\n  - path: a.db\n    bucket: file:///b\n   replicas: [\n",
      /^walsync\.yml:4: invalid YAML/,
    ],
    [
      "invalid YAML (tab)",
      "sync-interval: 1s\ndatabases:\n\t- path: a.db\n",
      /^walsync\.yml:3: invalid YAML/,
    ],
    [
      "invalid YAML (duplicate key)",
      "databases:\n  - path: a.db\n    path: b.db\n    bucket: file:///b\n",
      /^walsync\.yml:3: invalid YAML/,
    ],
    [
      "access key without a secret",
      "databases:\n  - path: a.db\n    replicas:\n      - bucket: s3://good-bucket/p\n        access-key-id: AK\n",
      /^walsync\.yml:4: give both access-key-id and secret-access-key/,
    ],
    [
      "bad metrics address",
      "metrics-addr: localhost\ndatabases:\n  - path: a.db\n    bucket: file:///b\n",
      /^walsync\.yml:1: metrics-addr "localhost" must be host:port/,
    ],
    [
      "sync interval too short",
      "databases:\n  - path: a.db\n    bucket: file:///b\n    sync-interval: 1ms\n",
      /^walsync\.yml:4: sync-interval must be at least 10ms/,
    ],
    [
      "databases not a list",
      "sync-interval: 1s\ndatabases:\n  path: a.db\n",
      /^walsync\.yml:(2|3): databases: must be a list/,
    ],
    // A missing setting has no line of its own: the message must still point into the file.
    [
      "no databases at all",
      "sync-interval: 1s\nretention: 1h\n",
      /^walsync\.yml:[1-9]\d*: databases: must be a list/,
    ],
    [
      "a database without path",
      "sync-interval: 1s\ndatabases:\n  - bucket: file:///b\n",
      /^walsync\.yml:3: path must be a non-empty string/,
    ],
    [
      "a replica without bucket",
      "databases:\n  - path: a.db\n    replicas:\n      - endpoint: http://x:9000\n",
      /^walsync\.yml:4: bucket must be a non-empty string/,
    ],
  ];
  const wrong: string[] = [];
  for (const [what, text, pattern, env] of cases) {
    const message = configError(text, env);
    if (!pattern.test(message)) wrong.push(`${what}: ${message}`);
  }
  assert.deepEqual(wrong, [], "messages that do not name the right line");
});
