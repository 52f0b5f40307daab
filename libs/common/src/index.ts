export * from './domain.errors';
export * from './network-errors';
