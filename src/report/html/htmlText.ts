/** Text as HTML (element content and attribute values). */
export function html(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A chart as a figure: the static SVG, a caption, and `data-*` attributes holding the figures drawn (for scripts and tests). */
export function figure(kind: string, title: string, svg: string, data: Record<string, string | number> = {}, caption = ''): string {
  const attrs = Object.entries(data)
    .map(([k, v]) => ` data-${k}="${html(v)}"`)
    .join('');
  return `<figure class="chart" data-chart="${html(kind)}"${attrs}><h3>${html(title)}</h3>${svg}${caption ? `<figcaption>${caption}</figcaption>` : ''}</figure>`;
}

export const PAGE_STYLE = `
:root{color-scheme:light;--ok:#1a7f37;--warn:#9a6700;--fail:#cf222e;--muted:#57606a;--line:#d0d7de}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:0 0 4px}
.verdict{border:1px solid var(--line);border-left:6px solid var(--muted);border-radius:6px;padding:12px 16px}
.verdict.ok{border-left-color:var(--ok)}.verdict.fail{border-left-color:var(--fail)}
.state{font-weight:700;font-family:ui-monospace,monospace}.ok .state{color:var(--ok)}.fail .state{color:var(--fail)}
.error{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:6px 0 0}
.meta{color:var(--muted);margin:4px 0 0}
ul.diagnoses{list-style:none;padding:0}ul.diagnoses li{border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:8px 0}
.sev-error,.st-fail{color:var(--fail);font-weight:700}.sev-warning,.st-warn{color:var(--warn);font-weight:700}.sev-info,.st-skip{color:var(--muted);font-weight:700}.st-pass{color:var(--ok);font-weight:700}
.fix{margin:4px 0 0}.fix::before{content:"fix: ";font-weight:600}
.evidence{font-family:ui-monospace,monospace;font-size:12px;color:var(--muted);white-space:pre-wrap;margin:4px 0 0}
figure.chart{margin:16px 0;border:1px solid var(--line);border-radius:6px;padding:8px 12px;overflow-x:auto}
figure.chart svg{display:block;max-width:100%;height:auto}figcaption{color:var(--muted);font-size:12px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
footer{color:var(--muted);font-size:12px;margin-top:32px}
`;

/** The whole page: self-contained (inline style, static SVG, no script, no external resource). */
export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<title>${html(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<main>
${body}
<footer>Written by vbe (vertex-batch-emulator). Self-contained: no script, nothing loaded from the network.</footer>
</main>
</body>
</html>
`;
}
