import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../common/pagination/cursor';
import { isoDateSchema, isoDateTimeSchema } from '../../common/validation/zod';

/** ISO 4217 codes the runtime knows (Intl), upper-case. */
const ISO_4217 = new Set<string>(Intl.supportedValuesOf('currency'));

export const currencySchema = z
  .string()
  .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as INR')
  .refine((c) => ISO_4217.has(c), 'is not an ISO 4217 currency code');

/**
 * Money in minor units: a JSON integer from 1 to 2^53-1. Floats, strings,
 * zero and negatives are rejected (z.int() also refuses unsafe integers).
 */
export const amountSchema = z.int().positive().max(Number.MAX_SAFE_INTEGER);

const memo = z.string().trim().min(1).max(500);

export const orgIdParamSchema = z.strictObject({ orgId: z.uuid() });
export class LedgerOrgIdParam extends createZodDto(orgIdParamSchema) {}

export const accountIdParamSchema = z.strictObject({ accountId: z.uuid() });
export class AccountIdParam extends createZodDto(accountIdParamSchema) {}

export const entryIdParamSchema = z.strictObject({ entryId: z.uuid() });
export class EntryIdParam extends createZodDto(entryIdParamSchema) {}

export const createAccountSchema = z.strictObject({
  counterpartyOrgId: z.uuid(),
  currency: currencySchema.default('INR'),
});
export class CreateAccountDto extends createZodDto(createAccountSchema) {}

export const accountsPageQuerySchema = z.strictObject({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
});
export class AccountsPageQueryDto extends createZodDto(accountsPageQuerySchema) {}

/** `?asOrgId=`: which side to act as when the caller is a member of both orgs. */
const asOrgId = z.uuid().optional();

export const sideQuerySchema = z.strictObject({ asOrgId });
export class SideQueryDto extends createZodDto(sideQuerySchema) {}

export const createInvoiceSchema = z.strictObject({
  number: z.string().trim().min(1).max(64),
  amount: amountSchema,
  currency: currencySchema.optional(),
  tripId: z.uuid().optional(),
  dueDate: isoDateSchema.optional(),
  memo: memo.optional(),
});
export class CreateInvoiceDto extends createZodDto(createInvoiceSchema) {}
export type CreateInvoiceInput = z.infer<typeof createInvoiceSchema>;

export const PAYMENT_DIRECTIONS = ['RECEIVED', 'PAID'] as const;
export type PaymentDirection = (typeof PAYMENT_DIRECTIONS)[number];

export const createPaymentSchema = z.strictObject({
  amount: amountSchema,
  method: z.string().trim().min(1).max(40),
  currency: currencySchema.optional(),
  reference: z.string().trim().min(1).max(200).optional(),
  invoiceId: z.uuid().optional(),
  /** From the acting org's view; default RECEIVED, or implied by the invoice. */
  direction: z.enum(PAYMENT_DIRECTIONS).optional(),
  memo: memo.optional(),
});
export class CreatePaymentDto extends createZodDto(createPaymentSchema) {}
export type CreatePaymentInput = z.infer<typeof createPaymentSchema>;

export const reverseSchema = z.strictObject({ reason: z.string().trim().min(1).max(500) });
export class ReverseDto extends createZodDto(reverseSchema) {}

const isoTime = isoDateTimeSchema.transform((s) => new Date(s));

export const entriesQuerySchema = z
  .strictObject({
    asOrgId,
    from: isoTime.optional(),
    to: isoTime.optional(),
    cursor: z.string().max(200).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'from must not be after to', path: ['from'] });
export class EntriesQueryDto extends createZodDto(entriesQuerySchema) {}

export const statementQuerySchema = z
  .strictObject({
    asOrgId,
    from: isoTime.optional(),
    to: isoTime.optional(),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'from must not be after to', path: ['from'] });
export class StatementQueryDto extends createZodDto(statementQuerySchema) {}

// ---------------------------------------------------------------------------
// Views (what the API returns). Money is a JSON number of minor units.

export interface AccountView {
  id: string;
  /** The org whose side this view is from. */
  orgId: string;
  counterpartyOrgId: string;
  currency: string;
  /** What the counterparty owes `orgId` (negative: what `orgId` owes it). */
  balance: number;
  entryCount: number;
  lastPostedAt: string | null;
  createdAt: string;
}

export interface EntryView {
  id: string;
  accountId: string;
  postingId: string;
  /** The side this entry books: `amount` and `runningBalance` are from this org's view. */
  orgId: string;
  seq: number;
  kind: 'INVOICE' | 'PAYMENT' | 'REVERSAL';
  amount: number;
  runningBalance: number;
  currency: string;
  createdAt: string;
}

export interface InvoiceView {
  id: string;
  accountId: string;
  issuerOrgId: string;
  number: string;
  amount: number;
  amountPaid: number;
  currency: string;
  status: 'OPEN' | 'PARTIALLY_PAID' | 'PAID' | 'REVERSED';
  tripId: string | null;
  dueDate: string | null;
  memo: string | null;
  postingId: string;
  createdAt: string;
  entries: EntryView[];
}

export interface PaymentView {
  id: string;
  accountId: string;
  payerOrgId: string;
  payeeOrgId: string;
  amount: number;
  currency: string;
  method: string;
  reference: string | null;
  invoiceId: string | null;
  memo: string | null;
  reversed: boolean;
  postingId: string;
  createdAt: string;
  entries: EntryView[];
}

export interface ReversalView {
  id: string;
  accountId: string;
  reversalOfPostingId: string;
  reversedKind: 'INVOICE' | 'PAYMENT';
  reason: string;
  createdAt: string;
  entries: EntryView[];
}

export interface StatementHead {
  accountId: string;
  orgId: string;
  counterpartyOrgId: string;
  currency: string;
  from: string | null;
  to: string | null;
  openingBalance: number;
  closingBalance: number;
  entryCount: number;
}
