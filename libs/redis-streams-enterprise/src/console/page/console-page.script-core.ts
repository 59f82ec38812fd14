/**
 * First half of the console's browser script (plain ES5-style JavaScript, no framework, no build step): helpers, the
 * overview, topics, groups, schemas and mirror panels. Everything from the API is hostile: it is inserted with
 * `textContent`/text nodes and `.value` only, never as HTML. Served with the second half as `<base>/assets/console.js`.
 * Kept free of backticks and `${`: it lives in a template literal.
 */
export const CONSOLE_SCRIPT_CORE = String.raw`
var base = document.body.getAttribute('data-base') || '';
var state = { writes: false, replayEnabled: false, topicsOffset: 0, groupsOffset: 0, pageSize: 25 };

function el(tag, attrs, children) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (key) {
    var value = attrs[key];
    if (value === undefined || value === null || value === false) return;
    if (key === 'onclick') node.addEventListener('click', value);
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'className') node.className = String(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  });
  (children || []).forEach(function (child) {
    if (child === undefined || child === null) return;
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  });
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function body(sectionId) {
  return document.querySelector('#' + sectionId + ' > .body');
}

function show(sectionId, nodes) {
  var target = clear(body(sectionId));
  (Array.isArray(nodes) ? nodes : [nodes]).forEach(function (n) { if (n) target.appendChild(typeof n === 'object' ? n : document.createTextNode(String(n))); });
}

function notice(text, isError) {
  var node = document.getElementById('notice');
  node.textContent = text || '';
  node.className = isError ? 'error' : '';
}

function api(path, options) {
  options = options || {};
  var method = options.method || 'GET';
  var headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-rse-console'] = '1';
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(base + '/api/' + path, {
    method: method, headers: headers, credentials: 'same-origin', cache: 'no-store',
    body: options.body === undefined ? undefined : JSON.stringify(options.body)
  }).then(function (response) {
    return response.text().then(function (text) {
      var data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
      if (!response.ok) {
        var message = data && data.message ? (Array.isArray(data.message) ? data.message.join('; ') : String(data.message)) : response.statusText;
        var error = new Error(response.status + ' ' + message);
        error.status = response.status;
        throw error;
      }
      return data;
    });
  });
}

function q(params) {
  return Object.keys(params).filter(function (k) { return params[k] !== undefined && params[k] !== null && params[k] !== ''; })
    .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(String(params[k])); }).join('&');
}

function num(n) {
  return n === null || n === undefined ? '?' : Number(n).toLocaleString('en-US');
}

function duration(ms) {
  if (ms === null || ms === undefined) return '?';
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 3600000) return Math.round(ms / 60000) + ' min';
  if (ms < 86400000) return (ms / 3600000).toFixed(1) + ' h';
  return (ms / 86400000).toFixed(1) + ' d';
}

function table(columns, rows, rowAttrs) {
  var head = el('tr', {}, columns.map(function (c) { return el('th', { className: c.num ? 'num' : '', text: c.label }); }));
  var bodyRows = rows.map(function (cells, i) {
    return el('tr', rowAttrs ? rowAttrs(i) : {}, cells.map(function (cell, j) {
      var cls = columns[j].num ? 'num' : columns[j].wrap ? 'wrap' : '';
      return el('td', { className: cls, 'data-col': columns[j].key || null }, [cell]);
    }));
  });
  return el('table', {}, [el('thead', {}, [head]), el('tbody', {}, bodyRows)]);
}

function pager(data, load) {
  if (data.total <= data.limit) return null;
  var last = data.offset + data.items.length;
  return el('div', { className: 'pager' }, [
    el('button', { type: 'button', text: 'Previous', disabled: data.offset === 0, onclick: function () { load(Math.max(0, data.offset - data.limit)); } }),
    el('span', { className: 'muted', text: (data.offset + 1) + '–' + last + ' of ' + data.total }),
    el('button', { type: 'button', text: 'Next', disabled: last >= data.total, onclick: function () { load(last); } })
  ]);
}

function failed(sectionId) {
  return function (error) { show(sectionId, el('p', { className: 'muted', text: 'Could not load: ' + error.message })); };
}

function loadOverview() {
  return api('overview').then(function (o) {
    state.writes = o.writes === true;
    state.replayEnabled = o.replayEnabled === true;
    document.getElementById('prefix').textContent = 'prefix ' + o.keyPrefix;
    var status = document.getElementById('server-status');
    if (o.server) {
      status.textContent = 'server ' + o.server.status + (o.server.healthy ? ' · healthy' : ' · not healthy');
      status.className = 'badge ' + (o.server.healthy ? 'ok' : 'bad');
      status.title = (o.server.reasons || []).concat(o.server.warnings || []).join('\n');
    } else {
      status.textContent = 'no server in this app';
      status.className = 'badge';
    }
    var mode = document.getElementById('mode');
    mode.textContent = state.writes ? 'writes allowed' : 'read-only';
    mode.className = 'badge ' + (state.writes ? 'warn' : 'ok');
    document.getElementById('replay-form').hidden = !state.writes || !state.replayEnabled;
  });
}

function loadTopics(offset) {
  state.topicsOffset = offset || 0;
  return api('topics?' + q({ offset: state.topicsOffset, limit: state.pageSize })).then(function (data) {
    var list = document.getElementById('replay-patterns');
    clear(list);
    data.items.forEach(function (t) { list.appendChild(el('option', { value: t.pattern })); });
    if (data.items.length === 0) return show('topics', el('p', { className: 'muted', text: 'No streams under this prefix yet.' }));
    var rows = data.items.map(function (t) {
      var parts = t.partitioned ? t.streams.filter(function (s) { return s.partition !== null; }).map(function (s) { return 'p' + s.partition + ': ' + num(s.length); }).join(', ') : '';
      return [t.pattern, t.partitioned ? String(t.streams.filter(function (s) { return s.partition !== null; }).length) : '–', num(t.length), parts];
    });
    show('topics', [
      table([{ label: 'Topic (pattern)', key: 'pattern', wrap: true }, { label: 'Partitions', key: 'partitions', num: true }, { label: 'Length', key: 'length', num: true },
        { label: 'Per partition', key: 'per-partition', wrap: true }], rows,
        function (i) { return { 'data-topic': data.items[i].pattern }; }),
      pager(data, loadTopics),
      data.truncated ? el('p', { className: 'muted', text: 'More streams exist than the console looks at; the list is incomplete.' }) : null
    ]);
  }, failed('topics'));
}

function consumersList(group) {
  var items = group.consumers.map(function (c) {
    return el('li', {}, [el('strong', { text: c.name }), ' · pending ' + num(c.pending) + ' · idle ' + duration(c.idleMs)]);
  });
  if (group.consumerCount > group.consumers.length) items.push(el('li', { className: 'muted', text: '… ' + (group.consumerCount - group.consumers.length) + ' more' }));
  return items.length ? el('ul', { className: 'consumers' }, items) : el('span', { className: 'muted', text: 'none' });
}

function loadGroups(offset) {
  state.groupsOffset = offset || 0;
  return api('groups?' + q({ offset: state.groupsOffset, limit: state.pageSize })).then(function (data) {
    if (data.items.length === 0) return show('groups', el('p', { className: 'muted', text: 'No consumer groups yet.' }));
    var rows = data.items.map(function (g) {
      return [g.topic, g.partition === null ? '–' : String(g.partition), g.group, num(g.lag), num(g.pending), g.owner || '–', consumersList(g)];
    });
    show('groups', [
      table([{ label: 'Topic', wrap: true }, { label: 'Partition', num: true }, { label: 'Group', key: 'group' }, { label: 'Lag', key: 'lag', num: true },
        { label: 'Pending', key: 'pending', num: true }, { label: 'Lease owner', key: 'owner' }, { label: 'Consumers (idle)', key: 'consumers' }], rows,
        function (i) { return { 'data-topic': data.items[i].topic, 'data-group': data.items[i].group, 'data-partition': data.items[i].partition === null ? null : String(data.items[i].partition) }; }),
      pager(data, loadGroups)
    ]);
  }, failed('groups'));
}

function loadSchemas() {
  return api('schemas').then(function (data) {
    if (!data.available) return show('schemas', el('p', { className: 'muted', text: 'No schema manager in this application.' }));
    if (data.eventTypes.length === 0) return show('schemas', el('p', { className: 'muted', text: 'No schemas registered.' }));
    var rows = data.eventTypes.map(function (t) {
      var buttons = t.versions.map(function (v) {
        return el('button', { type: 'button', className: 'version', text: v, onclick: function () { showSchema(t.eventType, v); } });
      });
      return [t.eventType, num(t.count), el('span', {}, buttons)];
    });
    show('schemas', table([{ label: 'Event type', key: 'eventType', wrap: true }, { label: 'Versions', num: true }, { label: 'Newest first', key: 'versions' }], rows,
      function (i) { return { 'data-event-type': data.eventTypes[i].eventType }; }));
  }, failed('schemas'));
}

function showSchema(eventType, version) {
  api('schemas/version?' + q({ eventType: eventType, version: version })).then(function (data) {
    var pre = document.getElementById('schema-detail');
    pre.hidden = false;
    pre.textContent = data.eventType + ' @ ' + data.version + '\n\n' + data.schema;
  }, function (error) { notice(error.message, true); });
}

function loadMirror() {
  return api('mirror').then(function (data) {
    if (!data.configured) return show('mirror', el('p', { className: 'muted', text: 'No mirror configured.' }));
    var rows = data.topics.map(function (t) { return [t.mirror || '–', t.source, t.target, num(t.lag), num(t.copied), t.lastSourceId === null ? '–' : t.lastSourceId]; });
    var failing = (data.mirrors || []).filter(function (m) { return m.failing; }).map(function (m) {
      return el('p', { className: 'badge bad', text: 'mirror ' + m.name + ' is failing' + (m.lastError ? ': ' + m.lastError : '') });
    });
    show('mirror', [
      el('p', {}, [el('span', { className: 'badge ' + (data.running ? 'ok' : 'bad'), text: data.running ? 'running' : 'stopped' }), data.region ? ' into region ' + data.region : null])
    ].concat(failing, [
      table([{ label: 'Mirror' }, { label: 'Source', wrap: true }, { label: 'Target', wrap: true }, { label: 'Lag', key: 'lag', num: true }, { label: 'Copied', key: 'copied', num: true }, { label: 'Last source id' }], rows),
      data.more ? el('p', { className: 'muted', text: '… ' + data.more + ' more topics' }) : null
    ]));
  }, failed('mirror'));
}
`;
