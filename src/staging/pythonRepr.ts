/**
 * Python's `repr()` of a str and of a `(str, int)` tuple, as Vertex writes each line of
 * `prediction.errors_stats-*`: `('Post request fails. ...', 16)`.
 *
 * Quotes: single, unless the text holds a single quote and no double quote. Escaped: the
 * backslash, the chosen quote, \t \n \r, and every character Python's str.isprintable() rejects
 * (Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than the space) as \xhh, \uhhhh or
 * \Uhhhhhhhh. Printable non-ASCII characters stay as they are.
 */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

export function pythonStrRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch !== ' ' && NOT_PRINTABLE.test(ch)) out += hexEscape(code);
    else out += ch;
  }
  return out + quote;
}

function hexEscape(code: number): string {
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\U${code.toString(16).padStart(8, '0')}`;
}

/** One errors_stats line: Python's repr of the tuple (message, count). */
export function errorStatsLine(message: string, count: number): string {
  return `(${pythonStrRepr(message)}, ${count})`;
}
