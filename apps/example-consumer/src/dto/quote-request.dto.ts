import { IsIn, IsInt, IsNumber, Max, Min } from 'class-validator';
import { CURRENCIES, type Currency, type QuoteRequest } from '../orders.contracts.js';

export class QuoteRequestDto implements QuoteRequest {
  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 2 })
  @Min(0)
  @Max(1_000_000)
  amount!: number;

  @IsInt()
  @Min(1)
  @Max(10_000)
  quantity!: number;

  @IsIn(CURRENCIES)
  currency!: Currency;
}
