export * from './training-queue.contract';
export * from './queue.module';
