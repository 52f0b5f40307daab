import { applyDecorators, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';

import { AdminTokenGuard } from './admin-token.guard';

/** An admin controller: behind ADMIN_TOKEN, documented under the admin tag with its bearer scheme and its 401. */
export function AdminApi(): ClassDecorator {
  return applyDecorators(
    ApiTags('admin'),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'Missing or wrong bearer token (ADMIN_TOKEN).' }),
    UseGuards(AdminTokenGuard),
  );
}
