import { ArrayMaxSize, IsArray, IsNumber } from 'class-validator';
import type { SumRequest } from '../orders.contracts.js';

export class SumRequestDto implements SumRequest {
  @IsArray()
  @ArrayMaxSize(10_000)
  @IsNumber({ allowNaN: false, allowInfinity: false }, { each: true })
  amounts!: number[];
}
