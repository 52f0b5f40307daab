// Tests talk to the real local Postgres and Redis, but never to the developer's data: database `test`, Redis db 1.
process.env.NODE_ENV = 'test';
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
process.env.REDIS_URL ??= 'redis://127.0.0.1:6379/1';
process.env.MMOE_BACKEND ??= 'wasm';
process.env.LOG_LEVEL ??= 'warn';
// A score's deadline is real time: on a loaded test machine a request can take seconds, which must not fail a test
// about something else. Tests of deadlines set their own (the x-request-deadline-ms header, or the app's config).
process.env.SCORE_DEADLINE_MAX_MS ??= '30000';
process.env.SCORE_DEADLINE_MS ??= '10000';
