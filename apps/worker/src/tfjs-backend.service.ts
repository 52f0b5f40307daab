import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { initBackend } from '@app/mmoe';

@Injectable()
export class TfjsBackendService implements OnModuleInit {
  private readonly logger = new Logger(TfjsBackendService.name);

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Nest awaits this before the worker counts as started, so a forced backend that cannot load fails the boot, not the first job. */
  async onModuleInit(): Promise<void> {
    const { name, detail } = await initBackend(this.config.MMOE_BACKEND);
    this.logger.log(`tfjs backend: ${name} (${detail})`);
  }
}
