/**
 * The console's one HTML page. Static except for the base path (the request's own path, HTML-escaped), which the
 * script reads from `data-base`; no inline script or style (the Content-Security-Policy forbids them), no data: every
 * value is fetched from the JSON API and inserted as text by the script.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an HTML attribute value or text node. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** The page, its assets under `<base>/assets/`. */
export function consolePage(base: string): string {
  const b = escapeHtml(base);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Redis Streams console</title>
<link rel="stylesheet" href="${b}/assets/console.css">
<script src="${b}/assets/console.js" defer></script>
</head>
<body data-base="${b}">
<header>
  <h1>Redis Streams console</h1>
  <span id="prefix" class="muted"></span>
  <span id="server-status" class="badge"></span>
  <span id="mode" class="badge"></span>
  <button type="button" id="refresh">Refresh</button>
</header>
<nav>
  <a href="#topics">Topics</a> <a href="#groups">Groups</a> <a href="#dead-letters">Dead letters</a>
  <a href="#replay">Replay</a> <a href="#schemas">Schemas</a> <a href="#mirror">Mirror</a> <a href="#audit">Audit trail</a>
</nav>
<div id="notice" role="status" aria-live="polite"></div>
<main>
  <section id="topics"><h2>Topics</h2><div class="body">Loading…</div></section>
  <section id="groups"><h2>Groups and consumers</h2><div class="body">Loading…</div></section>
  <section id="dead-letters"><h2>Dead letters</h2>
    <div class="controls"><label>Pattern <select id="dl-pattern"></select></label></div>
    <div class="body">Loading…</div>
    <div id="dl-detail"></div>
  </section>
  <section id="replay"><h2>Replay</h2>
    <form id="replay-form" class="controls" novalidate>
      <label>Pattern <input id="replay-pattern" name="pattern" required list="replay-patterns" autocomplete="off"></label>
      <datalist id="replay-patterns"></datalist>
      <label>From <input id="replay-start" name="startTime" type="datetime-local" step="1"></label>
      <label>Max messages <input id="replay-max" name="maxMessages" type="number" min="1"></label>
      <label>Copy to pattern <input id="replay-target" name="targetStream" placeholder="(this app's handlers)"></label>
      <label><input id="replay-dry" name="dryRun" type="checkbox"> Dry run</label>
      <button type="submit" id="replay-start-button" class="write">Start replay</button>
    </form>
    <div class="body"></div>
  </section>
  <section id="schemas"><h2>Schema versions</h2><div class="body">Loading…</div><pre id="schema-detail" hidden></pre></section>
  <section id="mirror"><h2>Mirror</h2><div class="body">Loading…</div></section>
  <section id="audit"><h2>Audit trail (last 24 hours)</h2><div class="body">Loading…</div></section>
</main>
</body>
</html>
`;
}
