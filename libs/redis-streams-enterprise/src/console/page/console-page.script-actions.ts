/**
 * Second half of the console's browser script: the dead-letter panel (list, inspect, redrive, delete) and the replay
 * panel (start, progress bars), then the start-up. Uses the helpers of the first half (console-page.script-core.ts).
 * Write buttons exist only when the API says writes are allowed (the API refuses them anyway otherwise). Kept free of
 * backticks and `${`: it lives in a template literal.
 */
export const CONSOLE_SCRIPT_ACTIONS = String.raw`
var letters = { pattern: '', after: null, history: [] };
var polling = {};

function loadDeadLetterPatterns() {
  return api('dead-letters').then(function (data) {
    var select = clear(document.getElementById('dl-pattern'));
    data.patterns.forEach(function (p) { select.appendChild(el('option', { value: p.pattern, text: p.pattern + ' (' + p.count + ')' })); });
    var still = data.patterns.some(function (p) { return p.pattern === letters.pattern; });
    if (!still) { letters.pattern = data.patterns.length ? data.patterns[0].pattern : ''; letters.after = null; letters.history = []; }
    select.value = letters.pattern;
    if (!letters.pattern) { clear(document.getElementById('dl-detail')); return show('dead-letters', el('p', { className: 'muted', text: 'No dead letters.' })); }
    return loadLetters(letters.after);
  }, failed('dead-letters'));
}

function writeButton(label, className, action) {
  if (!state.writes) return null;
  return el('button', { type: 'button', className: 'write ' + className, text: label, onclick: action });
}

function deleteButton(id) {
  var armed = false;
  var button = writeButton('Delete', 'delete', function () {
    if (!armed) { armed = true; button.textContent = 'Confirm delete'; button.className = 'write delete danger'; return; }
    button.disabled = true;
    api('dead-letters?' + q({ pattern: letters.pattern, ids: id }), { method: 'DELETE' }).then(function (r) {
      notice('Deleted ' + r.deleted + ' dead letter(s).');
      return refreshAll();
    }, function (error) { button.disabled = false; notice('Delete failed: ' + error.message, true); });
  });
  return button;
}

function redrive(ids) {
  return api('dead-letters/redrive', { method: 'POST', body: { pattern: letters.pattern, ids: ids } }).then(function (r) {
    notice('Redrove ' + r.redriven.length + ' dead letter(s)' + (r.skipped.length ? ', ' + r.skipped.length + ' skipped (payload gone)' : '') + (r.notFound.length ? ', ' + r.notFound.length + ' not found' : '') + '.');
    return refreshAll();
  }, function (error) { notice('Redrive failed: ' + error.message, true); });
}

function loadLetters(after) {
  letters.after = after || null;
  return api('dead-letters?' + q({ pattern: letters.pattern, after: letters.after, limit: state.pageSize })).then(function (data) {
    var rows = data.items.map(function (l) {
      var actions = el('span', { className: 'actions' }, [
        el('button', { type: 'button', className: 'inspect', text: 'Inspect', onclick: function () { inspect(l.dlqId); } }),
        writeButton('Redrive', 'redrive', function (event) { event.target.disabled = true; redrive([l.dlqId]); }),
        deleteButton(l.dlqId)
      ]);
      return [l.dlqId, l.reason, l.group, l.errorName + (l.errorMessage ? ': ' + l.errorMessage : ''), num(l.deliveries), l.lastFailedAt || '–', l.payload, actions];
    });
    var ids = data.items.map(function (l) { return l.dlqId; });
    var list = table([{ label: 'Id', key: 'id' }, { label: 'Reason', key: 'reason' }, { label: 'Group' }, { label: 'Error', key: 'error', wrap: true }, { label: 'Deliveries', num: true },
        { label: 'Last failed' }, { label: 'Payload', key: 'payload', wrap: true }, { label: '' }], rows,
        function (i) { return { 'data-id': data.items[i].dlqId }; });
    list.id = 'dl-table';
    show('dead-letters', [
      el('p', { className: 'muted', text: data.count + ' dead letter(s) of ' + data.pattern }),
      list,
      el('div', { className: 'pager' }, [
        letters.history.length ? el('button', { type: 'button', text: 'Previous', onclick: function () { loadLetters(letters.history.pop()); } }) : null,
        data.next ? el('button', { type: 'button', text: 'Next', onclick: function () { letters.history.push(letters.after); loadLetters(data.next); } }) : null,
        ids.length > 1 ? writeButton('Redrive all ' + ids.length + ' on this page', 'redrive-page', function (event) { event.target.disabled = true; redrive(ids); }) : null
      ])
    ]);
  }, failed('dead-letters'));
}

function inspect(id) {
  api('dead-letters/' + encodeURIComponent(id) + '?' + q({ pattern: letters.pattern })).then(function (l) {
    var rows = l.fields.map(function (f) { return [f.name, el('pre', { text: f.value })]; });
    var detail = clear(document.getElementById('dl-detail'));
    detail.appendChild(el('h3', { text: 'Dead letter ' + l.dlqId + ' (from ' + l.stream + ', entry ' + l.originalId + ')' }));
    detail.appendChild(table([{ label: 'Field' }, { label: 'Value', key: 'value', wrap: true }], rows));
  }, function (error) { notice('Inspect failed: ' + error.message, true); });
}

function jobRow(job) {
  var bar = el('progress', { max: '100', value: String(job.percent) });
  var p = job.progress || {};
  var text = job.state === 'failed' ? 'failed: ' + job.error
    : job.percent + ' % · read ' + num(p.scanned) + ' · replayed ' + num(p.replayed) + ' · skipped ' + num(p.skipped) + ' · failed ' + num(p.failed) + (job.result ? ' · stopped by ' + job.result.stoppedBy : '');
  return el('tr', { 'data-job': job.id, 'data-state': job.state }, [
    el('td', { text: job.pattern }), el('td', { text: job.target + (job.dryRun ? ' (dry run)' : '') }), el('td', { text: job.state }),
    el('td', {}, [bar]), el('td', { className: 'progress-text', text: text })
  ]);
}

function renderJobs(jobs) {
  if (jobs.length === 0) return show('replay', el('p', { className: 'muted', text: state.writes ? 'No replay started from this console yet.' : 'Read-only console: replays cannot be started here.' }));
  var head = el('tr', {}, ['Pattern', 'Target', 'State', 'Progress', ''].map(function (h) { return el('th', { text: h }); }));
  show('replay', el('table', { id: 'replay-jobs' }, [el('thead', {}, [head]), el('tbody', {}, jobs.map(jobRow))]));
  jobs.forEach(function (job) { if (job.state === 'running') poll(job.id); });
}

function loadReplays() {
  return api('replay').then(function (data) { renderJobs(data.items); }, failed('replay'));
}

function poll(id) {
  if (polling[id]) return;
  polling[id] = setTimeout(function () {
    api('replay/' + encodeURIComponent(id)).then(function (job) {
      delete polling[id];
      var row = document.querySelector('#replay-jobs tr[data-job="' + (/^[0-9a-f-]+$/.test(job.id) ? job.id : '') + '"]');
      if (row) row.parentNode.replaceChild(jobRow(job), row);
      if (job.state === 'running') poll(id);
      else { notice('Replay of ' + job.pattern + ' ' + job.state + '.'); refreshTables(); }
    }, function (error) { delete polling[id]; notice('Replay progress: ' + error.message, true); });
  }, 400);
}

function startReplay(event) {
  event.preventDefault();
  var start = document.getElementById('replay-start').value;
  var max = document.getElementById('replay-max').value;
  var payload = {
    pattern: document.getElementById('replay-pattern').value,
    startTime: start ? new Date(start).getTime() : undefined,
    maxMessages: max ? Number(max) : undefined,
    dryRun: document.getElementById('replay-dry').checked,
    targetStream: document.getElementById('replay-target').value || undefined
  };
  api('replay', { method: 'POST', body: payload }).then(function (job) {
    notice('Replay of ' + job.pattern + ' started.');
    return loadReplays();
  }, function (error) { notice('Replay refused: ' + error.message, true); });
}

function loadAudit(after) {
  return api('audit?' + q({ after: after, limit: state.pageSize })).then(function (data) {
    if (!data.enabled) return show('audit', el('p', { className: 'muted', text: 'The audit trail is off (compliance.audit.enabled).' }));
    if (data.items.length === 0) return show('audit', el('p', { className: 'muted', text: 'No operator action recorded since ' + data.since + '.' }));
    var rows = data.items.map(function (a) {
      return [a.at, a.actor, a.action, a.target, a.result + (a.error ? ': ' + a.error : ''), a.counts];
    });
    show('audit', [
      table([{ label: 'At' }, { label: 'Actor', key: 'actor' }, { label: 'Action', key: 'action' }, { label: 'Target', wrap: true }, { label: 'Result', key: 'result', wrap: true },
        { label: 'Counts', key: 'counts', wrap: true }], rows, function (i) { return { 'data-audit': data.items[i].id }; }),
      el('div', { className: 'pager' }, [
        after ? el('button', { type: 'button', text: 'From the start', onclick: function () { loadAudit(null); } }) : null,
        data.next ? el('button', { type: 'button', text: 'Next', onclick: function () { loadAudit(data.next); } }) : null
      ])
    ]);
  }, failed('audit'));
}

function refreshTables() {
  return Promise.all([loadTopics(state.topicsOffset), loadGroups(state.groupsOffset)]);
}

function refreshAll() {
  return Promise.all([refreshTables(), loadDeadLetterPatterns(), loadAudit(null)]);
}

function start() {
  document.getElementById('refresh').addEventListener('click', function () { notice(''); loadOverview().then(refreshAll).then(loadSchemas).then(loadMirror); });
  document.getElementById('replay-form').addEventListener('submit', startReplay);
  document.getElementById('dl-pattern').addEventListener('change', function (event) {
    letters.pattern = event.target.value; letters.after = null; letters.history = [];
    clear(document.getElementById('dl-detail'));
    loadLetters(null);
  });
  loadOverview().then(function () {
    return Promise.all([refreshAll(), loadReplays(), loadSchemas(), loadMirror()]);
  }, function (error) {
    notice('The console API did not answer: ' + error.message, true);
  }).then(function () { document.body.setAttribute('data-loaded', 'true'); });
}

start();
`;

/** The whole script, in strict mode and its own scope. */
export function consoleScript(core: string): string {
  return `(function () {\n'use strict';\n${core}\n${CONSOLE_SCRIPT_ACTIONS}\n})();\n`;
}
