// Tests talk to the real local Postgres and Redis, but never to the developer's data: database `test`, Redis db 1.
process.env.NODE_ENV = 'test';
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
process.env.REDIS_URL ??= 'redis://127.0.0.1:6379/1';
process.env.MMOE_BACKEND ??= 'wasm';
process.env.LOG_LEVEL ??= 'warn';
