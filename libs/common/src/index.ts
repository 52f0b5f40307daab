export * from './domain.errors';
export * from './network-errors';
export * from './byte.buffer';
