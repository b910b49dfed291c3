/** RFC 4180 CSV: CRLF line ends; a field with a comma, quote, CR or LF is quoted, quotes doubled. */
export function csvField(value: string | number | bigint | null | undefined): string {
  if (value === null || value === undefined) return '';
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** What a spreadsheet reads as the start of a formula (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell written by a user (memo, invoice number, payment reference,
 * names): one a spreadsheet would run as a formula gets a leading `'`, which
 * spreadsheets show as text (API.md, Ledger). Only for user text: amounts are
 * written as plain numbers (`-500` stays `-500`).
 */
export function csvUserText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return FORMULA_START.test(value) ? `'${value}` : value;
}

export function csvLine(fields: (string | number | bigint | null | undefined)[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/** Parses RFC 4180 text back into rows (used by tests and tools; not on a hot path). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export const STATEMENT_CSV_HEADER = [
  'seq',
  'entryId',
  'postingId',
  'createdAt',
  'kind',
  'document',
  'memo',
  'amount',
  'runningBalance',
  'currency',
] as const;
