import { createRequire } from 'node:module';
import type { EChartsOption } from 'echarts';

type ECharts = typeof import('echarts');
let loaded: ECharts | undefined;

/**
 * Apache ECharts, loaded on the first chart only (its single-file bundle: one file to parse
 * instead of ~900 ES modules), so no command pays for it unless a report is asked for.
 */
function echarts(): ECharts {
  return (loaded ??= createRequire(import.meta.url)('echarts') as ECharts);
}

export interface ChartSize {
  width: number;
  height: number;
}

/** Renders one chart to a static SVG string on the server (no script in the page). */
export function renderSvg(option: EChartsOption, size: ChartSize): string {
  const chart = echarts().init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  try {
    chart.setOption({ animation: false, aria: { enabled: true }, textStyle: { fontFamily: 'system-ui, sans-serif' }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
