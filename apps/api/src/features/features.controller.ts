import { Body, Controller, Param, Put } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';

import { LargeBody } from '../platform/body-limit';
import { BulkPutFeaturesDto, EntityIdParamsDto, FeaturesWrittenDto, PutFeaturesDto } from './dto/features.dto';
import { FeatureStoreService } from './feature-store.service';

@ApiTags('features')
@ApiBadRequestResponse({ description: 'Invalid id or body; `errors` names each failing field' })
@Controller('v1')
export class FeaturesController {
  constructor(private readonly featureStore: FeatureStoreService) {}

  @Put('users/features')
  @LargeBody()
  @ApiOperation({ summary: 'Replace the features of up to 10,000 users' })
  @ApiOkResponse({ type: FeaturesWrittenDto })
  putUsers(@Body() body: BulkPutFeaturesDto): Promise<FeaturesWrittenDto> {
    return this.featureStore.putMany('user', body.entities);
  }

  @Put('items/features')
  @LargeBody()
  @ApiOperation({ summary: 'Replace the features of up to 10,000 items' })
  @ApiOkResponse({ type: FeaturesWrittenDto })
  putItems(@Body() body: BulkPutFeaturesDto): Promise<FeaturesWrittenDto> {
    return this.featureStore.putMany('item', body.entities);
  }

  @Put('users/:id/features')
  @ApiOperation({ summary: "Replace a user's features" })
  @ApiOkResponse({ type: FeaturesWrittenDto })
  putUser(@Param() params: EntityIdParamsDto, @Body() body: PutFeaturesDto): Promise<FeaturesWrittenDto> {
    return this.featureStore.putOne('user', params.id, body.features);
  }

  @Put('items/:id/features')
  @ApiOperation({ summary: "Replace an item's features" })
  @ApiOkResponse({ type: FeaturesWrittenDto })
  putItem(@Param() params: EntityIdParamsDto, @Body() body: PutFeaturesDto): Promise<FeaturesWrittenDto> {
    return this.featureStore.putOne('item', params.id, body.features);
  }
}
