import type { InstanceConfig } from '../spec/vertexSchemas.js';

/**
 * One input record after Vertex's instanceConfig rules: what is sent to the model server
 * (`instance`), what the output line echoes (`echo`: the instance as sent, or the file URI for
 * file-list) and the key (with keyField). A JSONL line that needs no conversion is kept as its
 * JSON text (`json`, checked to parse): it is sent and echoed as written, never re-serialized.
 * A record that cannot be converted is an error record; it is written to the errors file and
 * the job goes on.
 */
export type InstanceRecord = ConvertedInstance | JsonInstance | BadInstance;
export type ConvertedInstance = { ok: true; instance: unknown; echo: unknown; key?: unknown };
export type JsonInstance = { ok: true; json: string };
export type BadInstance = { ok: false; echo: unknown; message: string };

/** Whether instanceConfig changes instances (JSON ones; CSV rows have their own defaults). */
export function needsConversion(config: InstanceConfig): boolean {
  return Boolean(config.keyField || config.includedFields?.length || config.excludedFields?.length || config.instanceType === 'array');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Applies keyField, includedFields / excludedFields and instanceType to a JSON object (a JSONL
 * line, or a CSV row keyed by the header). `columnOrder` is the CSV header order.
 */
export function applyInstanceConfig(value: unknown, config: InstanceConfig, columnOrder?: readonly string[], original: unknown = value): ConvertedInstance | BadInstance {
  if (!needsConversion(config)) return { ok: true, instance: value, echo: value };
  if (!isPlainObject(value)) {
    return { ok: false, echo: value, message: 'instanceConfig (keyField, includedFields, excludedFields, instanceType array) needs each instance to be a JSON object.' };
  }
  let key: unknown;
  const fields = { ...value };
  if (config.keyField) {
    if (!(config.keyField in fields)) return { ok: false, echo: value, message: `The key field "${config.keyField}" is missing from this instance.` };
    key = fields[config.keyField];
    delete fields[config.keyField];
  }
  let order: string[];
  if (config.includedFields?.length) {
    const missing = config.includedFields.filter((f) => !(f in fields));
    if (missing.length) return { ok: false, echo: value, message: `Included field(s) ${missing.map((m) => `"${m}"`).join(', ')} missing from this instance.` };
    order = config.includedFields.filter((f) => f !== config.keyField);
  } else {
    const excluded = new Set(config.excludedFields ?? []);
    order = (columnOrder ?? Object.keys(fields)).filter((f) => f in fields && !excluded.has(f));
  }
  const instance = config.instanceType === 'array' ? order.map((f) => fields[f]) : Object.fromEntries(order.map((f) => [f, fields[f]]));
  // "Excluded will be attached to the batch prediction output if key_field is not specified": the output's instance is the whole record.
  const echo = config.excludedFields?.length && !config.keyField ? original : instance;
  return key === undefined ? { ok: true, instance, echo } : { ok: true, instance, echo, key };
}

/**
 * A CSV cell Vertex cannot read: unquoted cells are read as floating point numbers ("you must
 * enclose all strings in double quotation marks"), and cell values with newlines are not accepted.
 * The row becomes a failed instance naming the row and the cell.
 */
export class BadCsvCell {
  constructor(
    readonly text: string,
    readonly reason: 'not-a-number' | 'newline',
  ) {}
}

/** A CSV cell: quoted cells are strings, unquoted ones numbers; anything else is a BadCsvCell. */
export function csvCell(text: string, quoted: boolean): string | number | BadCsvCell {
  if (/[\r\n]/.test(text)) return new BadCsvCell(text, 'newline');
  if (quoted) return text;
  const trimmed = text.trim();
  if (trimmed !== '' && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed)) return Number(trimmed);
  return new BadCsvCell(text, 'not-a-number');
}

/** The first bad cell of a row, as a message naming the row (its line in the file) and the cell. */
function badCellMessage(row: readonly unknown[], header: readonly string[], line: number | undefined): string | undefined {
  const index = row.findIndex((cell) => cell instanceof BadCsvCell);
  if (index < 0) return undefined;
  const cell = row[index] as BadCsvCell;
  const where = `${line !== undefined ? `row at line ${line}` : 'this row'}, column ${index + 1}${header[index] !== undefined ? ` ("${header[index]}")` : ''}`;
  return cell.reason === 'newline'
    ? `CSV ${where}: the cell contains a newline, which Vertex does not accept in CSV input.`
    : `CSV ${where}: the unquoted cell ${JSON.stringify(cell.text)} is not a number; Vertex reads unquoted CSV cells as floating point numbers. Enclose strings in double quotation marks.`;
}

/** A row as written, bad cells as their text (for the failed-instance record). */
function rowText(row: readonly unknown[]): unknown[] {
  return row.map((cell) => (cell instanceof BadCsvCell ? cell.text : cell));
}

/** Converts a CSV row to an instance: an array by default, an object keyed by the header on request. */
export function csvRowToInstance(row: unknown[], header: readonly string[], config: InstanceConfig, line?: number): ConvertedInstance | BadInstance {
  if (row.length !== header.length) {
    return { ok: false, echo: rowText(row), message: `This CSV row has ${row.length} values; the header has ${header.length} columns.` };
  }
  const bad = badCellMessage(row, header, line);
  if (bad) return { ok: false, echo: rowText(row), message: bad };
  const usesFields = config.keyField || config.includedFields?.length || config.excludedFields?.length;
  if (!usesFields && config.instanceType !== 'object') return { ok: true, instance: row, echo: row };
  const asObject = Object.fromEntries(header.map((h, i) => [h, row[i]]));
  const instanceType = config.instanceType ?? 'array';
  return applyInstanceConfig(asObject, { ...config, instanceType }, header, instanceType === 'array' ? row : asObject);
}
