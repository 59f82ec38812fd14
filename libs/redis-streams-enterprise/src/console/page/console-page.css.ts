/** The console's stylesheet (served as `<base>/assets/console.css`; inline styles are forbidden by the CSP). */
export const CONSOLE_CSS = `
:root { --fg: #1d2330; --muted: #667085; --line: #d9dee7; --bg: #f6f8fb; --card: #fff; --accent: #c8102e; --ok: #1a7f37; --warn: #9a6700; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 12px; align-items: center; padding: 10px 20px; background: var(--card); border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0 8px 0 0; }
nav { padding: 6px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 12px 20px 40px; display: grid; gap: 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; overflow-x: auto; }
section h2 { font-size: 15px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { max-width: 420px; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.badge { padding: 2px 8px; border-radius: 10px; font-size: 12px; border: 1px solid var(--line); }
.badge.ok { color: var(--ok); border-color: var(--ok); }
.badge.bad { color: var(--accent); border-color: var(--accent); }
.badge.warn { color: var(--warn); border-color: var(--warn); }
.controls { display: flex; gap: 12px; flex-wrap: wrap; align-items: end; margin-bottom: 10px; }
label { display: inline-flex; gap: 6px; align-items: center; }
input, select, button { font: inherit; padding: 3px 8px; border: 1px solid var(--line); border-radius: 5px; background: #fff; }
button { cursor: pointer; }
button.write { border-color: var(--accent); color: var(--accent); }
button.danger { background: var(--accent); color: #fff; }
button:disabled { opacity: .5; cursor: default; }
#notice { margin: 8px 20px 0; min-height: 1.2em; }
#notice.error { color: var(--accent); }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px; max-height: 360px; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
td[data-col="id"], .actions { white-space: nowrap; }
td pre { margin: 0; padding: 3px 6px; max-height: 200px; }
progress { width: 220px; height: 14px; vertical-align: middle; }
ul.consumers { list-style: none; margin: 0; padding: 0; }
ul.consumers li { white-space: nowrap; }
.pager { margin-top: 8px; display: flex; gap: 8px; align-items: center; }
`;
