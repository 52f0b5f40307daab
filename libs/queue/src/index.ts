export * from './live-ops-queue.contract';
export * from './training-queue.contract';
export * from './queue.module';
export * from './training-cancellation.repository';
export * from './training-control.module';
export * from './training-schedule.repository';
export * from './training-schedule.service';
