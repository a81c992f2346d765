// A fake agent: feeds the Fusion started by run.sh over the wire protocol (receiver port), so the
// console has something to show. Usage: node feed.mjs <receiver-url> <main-url>
//
// fs view "research" (pipe research): a snapshot with a few directories and files, one of them
// fresh (so integrity-suspect), a realtime partial write (suspect), an audit that finds a file
// no agent reported (blind spot, agent_missing), a file name full of markup (escaping) and two
// Latin-1 names that differ only in a byte that is not UTF-8.
// forest view "all-servers" (pipes nfs-a, nfs-b, nfs-c): three copies of /datasets, where nfs-a
// has the most files, nfs-b lacks some, and nfs-c has the newest (but a different) file.

const [recv, main] = process.argv.slice(2);
if (!recv || !main) {
  console.error('usage: node feed.mjs <receiver-url> <main-url>');
  process.exit(2);
}

const now = Date.now() / 1000;
const DAY = 86400;

async function call(method, url, key, body) {
  const r = await fetch(url, {
    method,
    headers: { 'X-API-Key': key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const file = (path, size, mtime, extra = {}) => ({
  path, file_name: path.slice(path.lastIndexOf('/') + 1), size, modified_time: mtime, created_time: mtime, is_directory: false, ...extra,
});
const dir = (path, mtime, extra = {}) => ({
  path, file_name: path.slice(path.lastIndexOf('/') + 1), size: 4096, modified_time: mtime, created_time: mtime, is_directory: true, ...extra,
});

// Owners as our agent reports them (issue 14): uid, gid, permission bits and the names its host
// resolves. Bob's key (run.sh) is bound to uid 1002: he cannot list /home/alice (0700) nor
// /data/run42/raw (carol's, group lab, 0750), so the console shows him fewer entries.
const USERS = { 0: 'root', 1001: 'alice', 1002: 'bob', 1003: 'carol' };
const GROUPS = { 0: 'root', 500: 'lab', 1001: 'alice', 1002: 'bob' };
const OWNERS = [
  // [path prefix, uid, gid, directory mode, file mode], first match wins
  ['/home/alice', 1001, 1001, 0o700, 0o600],
  ['/home/latin1', 1002, 1002, 0o755, 0o644],
  ['/data/logs', 1002, 500, 0o750, 0o640],
  ['/data/run42/raw', 1003, 500, 0o750, 0o640],
  ['/data/', 1001, 500, 0o755, 0o644],
  ['/datasets/run41', 1002, 500, 0o755, 0o644],
  ['/datasets/', 1001, 500, 0o755, 0o644],
  ['', 0, 0, 0o755, 0o644],
];
const under = (path, prefix) => prefix === '' || path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
function owned(rows) {
  return rows.map((r) => {
    const [, uid, gid, dmode, fmode] = OWNERS.find(([p]) => under(r.path, p));
    return { ...r, uid, gid, mode: r.is_directory ? dmode : fmode, uname: USERS[uid], gname: GROUPS[gid] };
  });
}

function batch(source, rows, isEnd = false) {
  const messageSource = source === 'message' ? 'realtime' : source;
  return {
    events: rows.length
      ? [{
        event_type: 'update', event_schema: 'fs', table: 'files', fields: Object.keys(rows[0]),
        rows, message_source: messageSource, index: -1, timestamp: now, metadata: {},
      }]
      : [],
    source_type: source,
    is_end: isEnd,
  };
}

async function session(key, task) {
  const s = await call('POST', `${recv}/api/v1/pipe/session/`, key, {
    task_id: task, source_type: 'fs', session_timeout_seconds: 900, client_info: { source_uri: null },
  });
  const [agentId, pipeId] = task.split(':');
  // The health fields the Rust agent adds to agent_status (the registry's Agents page shows them).
  await call('POST', `${recv}/api/v1/pipe/session/${s.session_id}/heartbeat`, key, {
    can_realtime: true,
    agent_status: {
      agent_id: agentId, pipe_id: pipeId, state: 'RUNNING|MESSAGE_SYNC', role: 'leader', events_pushed: 0,
      is_realtime_ready: true, initial_snapshot_done: true, watches_used: 42, watch_limit: 8192, last_error: null,
    },
  });
  return s.session_id;
}

const ingest = (key, sid, b) => call('POST', `${recv}/api/v1/pipe/ingest/${sid}/events`, key, b);

async function waitReady(view, key) {
  for (let i = 0; i < 100; i += 1) {
    const r = await fetch(`${main}/api/v1/views/${view}/stats`, { headers: { 'X-API-Key': key } });
    if (r.status === 200) return r.json();
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`view ${view} never became ready`);
}

// ---------------------------------------------------------------- fs view
{
  const key = 'agent-key-research';
  const sid = await session(key, 'lab-nfs-01:research');
  const run42 = now - 2 * DAY;
  const rows = [
    dir('/', now - 30 * DAY),
    dir('/data', now - 3 * DAY),
    dir('/data/run42', run42),
    dir('/data/run42/raw', run42),
    dir('/data/logs', now - 3600),
    dir('/home', now - 30 * DAY),
    dir('/home/alice', now - 10 * DAY),
    file('/data/run42/README.md', 2048, run42),
    file('/data/run42/sample_001.h5', 734003200, run42 + 10),
    file('/data/run42/sample_002.h5', 730112000, run42 + 20),
    file('/data/run42/sample_042.h5', 731000000, run42 + 30),
    file('/data/logs/app.log', 1234567, now - 3600),
    // written seconds ago: integrity suspect after the snapshot
    file('/data/logs/ingest.log', 88000, now - 5),
    file('/data/<img src=x onerror=alert(1)> & "q".txt', 12, now - 4 * DAY),
    file('/home/alice/notes.txt', 5120, now - 10 * DAY),
    // Latin-1 names (bytes E9 / E8, not UTF-8), sent as the Python agent sends them: `\udcXX`
    // (JSON.stringify writes a lone surrogate that way).
    dir('/home/latin1', now - 10 * DAY),
    file('/home/latin1/caf\udce9.txt', 1, now - 10 * DAY),
    file('/home/latin1/caf\udce8.txt', 22, now - 10 * DAY),
    // A newline is a legal byte in a POSIX file name.
    file('/home/latin1/two\nlines.txt', 3, now - 10 * DAY),
  ];
  for (let i = 1; i <= 24; i += 1) {
    rows.push(file(`/data/run42/raw/frame_${String(i).padStart(4, '0')}.tif`, 8388608 + i, run42 + i));
  }
  await ingest(key, sid, batch('snapshot', owned(rows.slice(0, 10))));
  await ingest(key, sid, batch('snapshot', owned(rows.slice(10))));
  await ingest(key, sid, batch('snapshot', [], true));
  await waitReady('research', 'query-secret');
  // a realtime partial write: suspect until the close arrives
  await ingest(key, sid, batch('message', owned([file('/data/logs/current.log', 4096, now - 1, { is_atomic_write: false })])));
  // an audit pass that finds a file no agent reported: blind-spot addition, agent_missing
  // (sample_042.h5 is not listed: the audit end finds it gone, a blind-spot deletion; raw/ is
  // reported unchanged, which protects its files)
  const inRun42 = { parent_path: '/data/run42', parent_mtime: run42 };
  await ingest(key, sid, batch('audit', owned([
    dir('/data/run42', run42, { audit_skipped: false }),
    dir('/data/run42/raw', run42, { audit_skipped: true }),
    file('/data/run42/README.md', 2048, run42, inRun42),
    file('/data/run42/sample_001.h5', 734003200, run42 + 10, inRun42),
    file('/data/run42/sample_002.h5', 730112000, run42 + 20, inRun42),
    file('/data/run42/orphan.dat', 999, run42 + 40, inRun42),
  ])));
  await ingest(key, sid, batch('audit', [], true));
  const stats = await waitReady('research', 'query-secret');
  console.log(`fs view research: ${stats.total_files} files, ${stats.suspect_file_count} suspect, blind spot ${stats.has_blind_spot}`);
}

// ---------------------------------------------------------------- forest view
{
  const base = now - 5 * DAY;
  const members = {
    'nfs-a': 12, // the complete copy
    'nfs-b': 8,
    'nfs-c': 10,
  };
  for (const [pipe, n] of Object.entries(members)) {
    const key = `agent-key-${pipe}`;
    const sid = await session(key, `${pipe}-client:${pipe}`);
    const rows = [dir('/datasets', base), dir('/datasets/run42', base), dir('/datasets/run41', base - DAY)];
    for (let i = 1; i <= n; i += 1) {
      const name = `/datasets/run42/sample_${String(i).padStart(3, '0')}.h5`;
      // nfs-c rewrote sample_003 later: newest mtime, different size
      if (pipe === 'nfs-c' && i === 3) rows.push(file(name, 700000000, now - 600));
      else rows.push(file(name, 730000000 + i, base + i));
    }
    rows.push(file('/datasets/run41/summary.csv', 40960, base - DAY));
    if (pipe === 'nfs-b') rows.push(file('/datasets/run41/extra_b.csv', 100, base - DAY));
    await ingest(key, sid, batch('snapshot', owned(rows)));
    await ingest(key, sid, batch('snapshot', [], true));
  }
  // the forest answers at once (no readiness gate); wait until every member holds its files
  for (let i = 0; i < 100; i += 1) {
    const r = await fetch(`${main}/api/v1/views/all-servers/stats?path=/datasets/run42&best=file_count`, { headers: { 'X-API-Key': 'query-secret-forest' } });
    const s = r.status === 200 ? await r.json() : null;
    const counts = (s && s.members ? s.members : []).map((m) => m.file_count || 0);
    if (counts.length === 3 && counts.reduce((a, b) => a + b, 0) === 30) {
      console.log(`forest view all-servers: members ${JSON.stringify(s.members.map((m) => [m.view_id, m.file_count]))}, best ${s.best && s.best.view_id}`);
      break;
    }
    if (i === 99) throw new Error(`forest not fed: ${r.status} ${JSON.stringify(s)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
