// The Warden console page. Everything shown comes from the console's JSON API and is rendered as
// text nodes, never parsed as markup: task data is written by agents and must not become markup.
// The login token lives in this tab's sessionStorage only; it arrives in the URL fragment, which
// is removed from the address bar at once.

const TOKEN_KEY = 'warden-console-token';
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

let selected = null;
let timer = null;
/** No approver key: approvals are shown, not decided. */
let readOnly = true;

/** An element with attributes and children (strings become text nodes). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

const badge = (text, kind = text) => el('span', { className: `badge ${String(kind).replace(/[^a-z_-]/gi, '')}` }, text);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname);
  }
}

class Unauthenticated extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { authorization: `Bearer ${token() ?? ''}`, ...(options.body ? { 'content-type': 'application/json' } : {}) },
    cache: 'no-store',
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) throw new Unauthenticated(body?.error?.message ?? 'not signed in');
  if (!response.ok) throw new Error(body?.error?.message ?? `${response.status} ${response.statusText}`);
  return body;
}

function showLogin(message) {
  clearInterval(timer);
  timer = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('main').hidden = true;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  $('token').focus();
}

async function start() {
  try {
    const session = await api('/api/session');
    $('login').hidden = true;
    $('main').hidden = false;
    $('sign-out').hidden = false;
    readOnly = session.readOnly;
    approvalCards.clear();
    $('who').textContent = readOnly ? 'read-only: started without an approver key' : `deciding approvals as approver ${session.approver}`;
    await refresh();
    clearInterval(timer);
    timer = setInterval(() => void refresh(), POLL_MS);
  } catch (error) {
    showLogin(error instanceof Unauthenticated && token() ? 'That token was not accepted.' : undefined);
  }
}

async function refresh() {
  try {
    const [approvals, tasks] = await Promise.all([api('/api/approvals'), api('/api/tasks')]);
    renderApprovals(approvals.approvals, approvals.unanswered ?? []);
    renderTasks(tasks.tasks);
    if (selected !== null) renderTask((await api(`/api/tasks/${encodeURIComponent(selected)}`)).task);
    $('status-line').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof Unauthenticated) return showLogin('The console no longer accepts this token.');
    $('status-line').textContent = `could not update: ${error.message}`;
  }
}

/**
 * Keeps what the user is typing and what was decided: each request keeps its own card for as long
 * as it is pending, whatever other tasks' requests come and go meanwhile, and while its task did
 * not answer the listing (a busy worker: not a sign the request was decided); a decided card stays
 * DECIDED_SHOWN_MS with its outcome, then leaves.
 */
const DECIDED_SHOWN_MS = 5000;
const approvalCards = new Map();
function renderApprovals(approvals, unanswered) {
  const now = Date.now();
  const pendingKeys = new Set(approvals.map((a) => `${a.workflowId}#${a.requestId}`));
  const unansweredTasks = new Set(unanswered.map((u) => u.workflowId));
  for (const [key, card] of approvalCards) {
    if (pendingKeys.has(key) || (unansweredTasks.has(card.dataset.workflowId) && card.dataset.decidedAt === undefined)) continue;
    const decidedAt = Number(card.dataset.decidedAt ?? 0);
    if (decidedAt === 0 || now - decidedAt > DECIDED_SHOWN_MS) approvalCards.delete(key);
  }
  for (const a of approvals) {
    const key = `${a.workflowId}#${a.requestId}`;
    if (!approvalCards.has(key)) approvalCards.set(key, approvalCard(a));
  }
  $('approvals-empty').hidden = approvalCards.size > 0;
  const cards = [...approvalCards.values()];
  const list = $('approval-list');
  if (cards.length !== list.children.length || cards.some((card, i) => list.children[i] !== card)) list.replaceChildren(...cards);
}

function approvalCard(a) {
  const reason = el('input', { type: 'text', placeholder: 'reason (recorded with the decision)', 'aria-label': 'reason', 'data-testid': 'approval-reason' });
  const outcome = el('span', { className: 'muted', role: 'status', 'data-testid': 'approval-outcome' });
  const decide = async (approved, buttons) => {
    buttons.forEach((b) => (b.disabled = true));
    try {
      const body = { workflowId: a.workflowId, requestId: a.requestId, approved, ...(reason.value.trim() ? { reason: reason.value.trim() } : {}) };
      const result = await api('/api/approvals/decide', { method: 'POST', body: JSON.stringify(body) });
      outcome.textContent = `${result.decided} as ${result.approver}`;
      card.dataset.decidedAt = String(Date.now());
      setTimeout(() => void refresh(), 300);
      setTimeout(() => void refresh(), DECIDED_SHOWN_MS + 300);
    } catch (error) {
      if (error instanceof Unauthenticated) return showLogin('The console no longer accepts this token.');
      outcome.textContent = `not decided: ${error.message}`;
      buttons.forEach((b) => (b.disabled = false));
    }
  };
  const approve = el('button', { type: 'button', 'data-testid': 'approve' }, 'Approve');
  const deny = el('button', { type: 'button', 'data-testid': 'deny' }, 'Deny');
  approve.addEventListener('click', () => void decide(true, [approve, deny]));
  deny.addEventListener('click', () => void decide(false, [approve, deny]));
  const card = el(
    'div',
    { className: 'approval', 'data-testid': 'approval', 'data-workflow-id': a.workflowId, 'data-request-id': a.requestId },
    el('div', {}, el('strong', {}, a.tool), ' in ', el('button', { type: 'button', className: 'link', onclick: () => select(a.workflowId) }, a.workflowId), ` (request ${a.requestId})`),
    el('div', { className: 'args mono', 'data-testid': 'approval-args' }, JSON.stringify(a.args, null, 2)),
    el('div', { className: 'muted' }, `rules: ${a.rules.join('; ')}`),
    el('div', { className: 'muted' }, `waits until ${when(a.expiresAt)}; nobody deciding by then denies it`),
    readOnly
      ? el('div', { className: 'muted', 'data-testid': 'approval-read-only' }, 'Decide with warden approve|deny, or start the console with --approver <name>.')
      : el('div', {}, reason, approve, deny, ' ', outcome),
  );
  return card;
}

function renderTasks(tasks) {
  $('task-rows').replaceChildren(
    ...tasks.map((t) =>
      el(
        'tr',
        { 'data-testid': 'task-row', 'data-workflow-id': t.workflowId, 'aria-current': t.workflowId === selected ? 'true' : undefined },
        el('td', {}, badge(t.status)),
        el('td', {}, el('button', { type: 'button', className: 'link', onclick: () => select(t.workflowId) }, t.workflowId)),
        el('td', { title: t.user ?? '' }, t.agent ?? ''),
        el('td', { title: t.closeTime ? `ended ${when(t.closeTime)}` : 'running' }, when(t.startTime)),
      ),
    ),
  );
}

async function select(workflowId) {
  selected = workflowId;
  for (const row of document.querySelectorAll('[data-testid=task-row]')) row.setAttribute('aria-current', String(row.getAttribute('data-workflow-id') === workflowId));
  try {
    renderTask((await api(`/api/tasks/${encodeURIComponent(workflowId)}`)).task);
  } catch (error) {
    if (error instanceof Unauthenticated) return showLogin('The console no longer accepts this token.');
    $('task').hidden = false;
    $('task-none').hidden = true;
    $('task-head').replaceChildren(el('p', { className: 'error' }, error.message));
  }
}

function renderTask(t) {
  $('task').hidden = false;
  $('task-none').hidden = true;
  $('task-title').textContent = `Task ${t.workflowId}`;
  $('task-head').replaceChildren(
    ...[
    el('p', {}, badge(t.status), ' ', t.summary ?? ''),
    el('p', { className: 'muted' }, `agent ${t.agent ?? '?'} for ${t.user ?? '?'}, model ${t.model ?? '?'}; Temporal: ${t.execution}; started ${when(t.startTime)}${t.closeTime ? `, ended ${when(t.closeTime)}` : ''}`),
    t.reason ? el('p', {}, `reason: ${t.reason}`) : null,
    t.final ? el('p', {}, `final answer: ${t.final.answer}`) : null,
    t.temporalUiUrl ? el('p', {}, el('a', { href: t.temporalUiUrl, rel: 'noreferrer noopener', target: '_blank' }, 'open in the Temporal UI')) : null,
    ].filter((node) => node !== null),
  );
  const c = t.custody;
  $('task-custody').replaceChildren(
    c.ok === null
      ? el('span', { className: 'muted' }, c.note ?? 'not verified')
      : c.ok
        ? el('span', {}, badge('verified', 'checkpointed'), ` ${c.records} records; signatures, hash chain and checkpoints intact${c.checkpointed ? '; every record of this task is under a signed checkpoint' : '; the newest records are not yet under a checkpoint'} (verified ${when(c.verifiedAt)})`)
        : el('span', {}, badge('tampered', 'broken'), ` ${c.records} records; ${c.problem.kind} at record ${c.problem.seq}: ${c.problem.message} (verified ${when(c.verifiedAt)})`),
  );
  $('task-subagents').replaceChildren(
    ...(t.subagents.length === 0
      ? [el('li', { className: 'muted' }, 'none')]
      : t.subagents.map((s) => el('li', { 'data-testid': 'subagent' }, '  '.repeat(s.depth - 1), badge(s.status), ' ', el('code', {}, s.agent), ' ', s.workflowId))),
  );
  $('timeline').replaceChildren(
    ...t.timeline.map((e) =>
      el(
        'li',
        { className: `kind-${e.kind}`, 'data-testid': 'timeline-entry', 'data-kind': e.kind, 'data-seq': e.seq ?? '', 'data-verification': e.verification },
        el('span', { className: 'mono' }, e.seq === null ? '–' : `#${e.seq}`),
        el('span', {}, badge(e.verification === 'no-record' ? 'no record' : e.verification, e.verification)),
        el('span', { className: 'muted' }, e.kind),
        el('span', { className: 'text', style: undefined }, `${'· '.repeat(e.depth)}${e.text}`),
        el('span', { className: 'mono muted', title: e.hash ?? '' }, e.hash ? e.hash.slice(0, 12) : ''),
      ),
    ),
  );
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  void start();
});
$('sign-out').addEventListener('click', () => showLogin('Signed out.'));

// The link with the token may also be opened in a tab that already shows the console.
window.addEventListener('hashchange', () => {
  if (!/token=/.test(location.hash)) return;
  takeTokenFromFragment();
  void start();
});

takeTokenFromFragment();
if (token()) void start();
else showLogin();
