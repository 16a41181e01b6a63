/** The report's stylesheet, inlined so that the file needs nothing beside it. */
export const styles = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #fff; }
h1 { font-size: 20px; margin: 0 0 12px; }
h2 { font-size: 16px; margin: 24px 0 8px; border-bottom: 1px solid #d8dce4; padding-bottom: 4px; }
code { font: 12px ui-monospace, monospace; overflow-wrap: anywhere; }
#summary dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
#summary dt { color: #5a6375; }
#summary dd { margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.metric { margin: 0; padding: 6px; border: 1px solid #e3e6ec; border-radius: 4px; }
figcaption { font-size: 12px; display: flex; justify-content: space-between; gap: 8px; max-width: 260px; }
figcaption .name { overflow-wrap: anywhere; }
figcaption .latest { color: #5a6375; white-space: nowrap; }
svg.chart { display: block; }
svg.chart .axis { stroke: #9aa3b2; stroke-width: 1; }
svg.chart .line { fill: none; stroke: #2f6fdf; stroke-width: 1.5; }
svg.chart .point { fill: #2f6fdf; }
svg.chart .tick, svg.chart .empty { font-size: 10px; fill: #5a6375; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #e3e6ec; padding: 2px 6px; text-align: right; white-space: nowrap; }
thead th:first-child { text-align: left; }
tbody th { text-align: left; font-weight: normal; font-family: ui-monospace, monospace; }
thead th { background: #f3f5f8; }
figure.headline { margin: 0; padding: 6px; border: 1px solid #c9d3e6; border-radius: 4px; background: #fafbfd; }
figure.headline figcaption .title { font-size: 13px; font-weight: 600; }
.series-caption { font-size: 11px; display: flex; gap: 6px; max-width: 260px; margin-top: 4px; }
.series-caption .latest { margin-left: auto; font-weight: 600; }
.series-caption .label { font-weight: 600; }
p.status { margin: 0 0 12px; padding: 6px 10px; border-radius: 4px; border: 1px solid #d8dce4; background: #f3f5f8; }
p.status[data-state="running"] { border-color: #e3c463; background: #fdf6e0; }
p.status[data-state="complete"] { border-color: #9cd3ae; background: #edf8f0; }
p.status[data-state="blocked"] { border-color: #e08a8a; background: #fdecec; }
.note, .unavailable { color: #5a6375; font-size: 12px; }
details.iteration { margin: 8px 0; border: 1px solid #e3e6ec; border-radius: 4px; padding: 4px 8px; }
details.iteration > summary { font-weight: 600; }
article.sample { margin: 8px 0 16px; }
article.sample h3 { font-size: 13px; font-weight: normal; margin: 8px 0 4px; }
pre { font: 12px/1.35 ui-monospace, monospace; background: #f6f7f9; border: 1px solid #e3e6ec; padding: 6px; margin: 4px 0;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 24em; overflow-y: auto; }
pre.description { font-family: system-ui, sans-serif; background: #fff; }
table.tests th, table.tests td { text-align: left; white-space: normal; vertical-align: top; }
table.tests td:first-child { white-space: nowrap; color: #5a6375; }
.ok { color: #1c7a3c; }
.bad { color: #b3261e; }
.muted { color: #8a93a3; }
`;
