import { IsIn, IsNumber, IsString, Length, Max, Min } from 'class-validator';
import { CURRENCIES, type Currency, type OrderCreated } from '../orders.contracts.js';

export class OrderCreatedDto implements OrderCreated {
  @IsString()
  @Length(1, 64)
  orderId!: string;

  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 2 })
  @Min(0)
  @Max(1_000_000)
  amount!: number;

  @IsIn(CURRENCIES)
  currency!: Currency;
}
