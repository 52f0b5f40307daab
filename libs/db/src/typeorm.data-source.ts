import { DataSource } from 'typeorm';

import { loadConfig } from '@app/config';

import { dataSourceOptions } from './data-source.options';

/** For the TypeORM CLI: `npm run migration:run` / `migration:revert`. */
export default new DataSource(dataSourceOptions(loadConfig()));
