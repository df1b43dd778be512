// The merchant dashboard. Every action is a call to the public /v1 API
// with the session cookie (credentials: 'same-origin') and the
// X-Requested-With header that cookie-authenticated changes require: open
// the developer tools' network tab to see each request as an API example.
import { t, el, svg, toUnits, fromUnits, wireCopyButtons, formatTime, shorten } from './common.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const signin = document.getElementById('signin');
const signoutButton = document.getElementById('signout');
const flashBox = document.getElementById('flash');
const STATUSES = ['new', 'partially_paid', 'confirming', 'paid', 'expired', 'reverted'];
const CHART_DAYS = 14;
const CHART_MAX_PAGES = 5; // at most 500 invoices are read for the chart
// The server's clock minus ours (the page carries the server's time), so
// the chart's days are the server's UTC days, those its data is dated in,
// even when this computer's clock is wrong or on the other side of midnight.
const skewMs = (Number(document.body.dataset.now) || Date.now()) - Date.now();

let account = null; // GET /v1/account, refreshed on every view
let renderSeq = 0; // a newer navigation wins over a slower older one

wireCopyButtons(document.body, { copied: t('common.copied'), failed: t('common.copied') });

// --- the API ---------------------------------------------------------------

class SignedOut extends Error {}

function idempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return 'dash_' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// api calls /v1 and returns {status, ok, data}. A 401 shows the sign-in
// form and throws SignedOut, unless allow401 is set.
async function api(method, path, body, { allow401 = false, idempotent = false } = {}) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'fetch' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (idempotent) headers['Idempotency-Key'] = idempotencyKey();
  let res;
  try {
    res = await fetch('/v1' + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, ok: false, data: { error: 'network', message: t('common.network_error') } };
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (res.status === 401 && !allow401) {
    showSignIn(t('dash.session_ended'));
    throw new SignedOut();
  }
  return { status: res.status, ok: res.ok, data };
}

function errorText(res) {
  return t('common.error', { message: (res.data && res.data.message) || 'HTTP ' + res.status });
}

// --- shell -----------------------------------------------------------------

function flash(text, kind) {
  flashBox.textContent = text;
  flashBox.className = 'notice ' + (kind || '');
  flashBox.hidden = !text;
}

function showSignIn(message) {
  account = null;
  nav.hidden = true;
  signoutButton.hidden = true;
  document.getElementById('account-name').textContent = '';
  view.replaceChildren();
  signin.hidden = false;
  flash(message || '', message ? 'warn' : '');
  document.getElementById('secret-key').focus();
}

function showApp() {
  signin.hidden = true;
  nav.hidden = false;
  signoutButton.hidden = false;
  document.getElementById('account-name').textContent = account ? account.name : '';
}

document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = document.getElementById('secret-key');
  const errorBox = document.getElementById('signin-error');
  const button = document.getElementById('signin-submit');
  errorBox.hidden = true;
  button.disabled = true;
  try {
    const res = await api('POST', '/sessions', { secret_key: input.value.trim() }, { allow401: true });
    if (res.ok) {
      input.value = '';
      flash('');
      if (!location.hash || location.hash === '#/') location.hash = '#/balances';
      await route();
      return;
    }
    errorBox.textContent = res.status === 429 ? t('dash.signin.limited') : res.status === 401 ? t('dash.signin.failed') : errorText(res);
    errorBox.hidden = false;
  } finally {
    button.disabled = false;
  }
});

signoutButton.addEventListener('click', async () => {
  await api('DELETE', '/sessions', undefined, { allow401: true });
  showSignIn(t('dash.signed_out'));
});

// signOutEverywhere ends every session of the account, a stolen
// cookie's too. It lives in Settings: the top bar keeps to one line.
function signOutEverywhere() {
  const button = el('button', { type: 'button', id: 'signout-all', class: 'secondary' }, t('dash.signout_all'));
  button.addEventListener('click', async () => {
    await api('DELETE', '/sessions?all=true', undefined, { allow401: true });
    showSignIn(t('dash.signed_out_all'));
  });
  const section = card(t('settings.sessions'), el('p', { class: 'hint' }, t('settings.sessions_hint')), el('div', { class: 'actions' }, button));
  section.id = 'settings-sessions';
  return section;
}

// --- routing ---------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, query] = raw.split('?');
  const parts = pathPart.split('/').filter(Boolean);
  return { parts, params: new URLSearchParams(query || '') };
}

async function route() {
  const seq = ++renderSeq;
  const { parts, params } = parseHash();
  const name = parts[0] || 'balances';
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.view === name);
  try {
    const res = await api('GET', '/account', undefined, { allow401: true });
    if (res.status === 401) {
      // First visit: just the form. A session that ended: say so.
      showSignIn(account ? t('dash.session_ended') : '');
      return;
    }
    if (!res.ok) {
      showApp();
      view.replaceChildren(el('p', { class: 'notice bad' }, errorText(res)));
      return;
    }
    account = res.data;
    showApp();
    showActiveLink();
    let content;
    switch (name) {
      case 'invoices': content = parts[1] ? await invoiceDetail(parts[1]) : await invoiceList(params); break;
      case 'new': content = newInvoice(); break;
      case 'payouts': content = await payouts(); break;
      case 'exports': content = exportsView(params); break;
      case 'webhooks': content = await webhooksView(params); break;
      case 'settings': content = settings(); break;
      default: content = await balances();
    }
    const alerts = await banners();
    if (seq !== renderSeq) return; // the user went elsewhere meanwhile
    view.replaceChildren(alerts, content);
    view.dataset.view = name;
  } catch (err) {
    if (err instanceof SignedOut) return;
    view.replaceChildren(el('p', { class: 'notice bad' }, t('common.error', { message: err.message })));
  }
}

window.addEventListener('hashchange', () => { flash(''); route(); });

// On a phone the navigation is one line that scrolls sideways: the
// current page's link is kept in view, and a faded edge says there is
// more on that side (base.css, nav.more-left / nav.more-right).
function navEdges() {
  nav.classList.toggle('more-left', nav.scrollLeft > 1);
  nav.classList.toggle('more-right', nav.scrollLeft + nav.clientWidth < nav.scrollWidth - 1);
}

function showActiveLink() {
  const a = nav.querySelector('a.active');
  if (a && !nav.hidden) {
    const edge = 32; // the fade's width
    const n = nav.getBoundingClientRect();
    const r = a.getBoundingClientRect();
    if (r.left < n.left + edge) nav.scrollLeft -= n.left + edge - r.left;
    else if (r.right > n.right - edge) nav.scrollLeft += r.right - (n.right - edge);
  }
  navEdges();
}

nav.addEventListener('scroll', navEdges, { passive: true });
window.addEventListener('resize', showActiveLink);

// --- helpers ---------------------------------------------------------------

function assetInfo(code) {
  return (account.assets || []).find((a) => a.asset === code) || { asset: code, decimals: 18, name: code };
}

function badge(status) {
  return el('span', { class: 'badge', dataset: { status } }, t('status.' + status));
}

// createdByBadge marks an invoice of the publishable key (issue #17): that
// key is public, so anyone could have created it, with any order id and
// amount. null for the secret key's (and the dashboard's) own invoices.
function createdByBadge(inv) {
  if (inv.created_by !== 'publishable_key') return null;
  return el('span', { class: 'badge', dataset: { createdBy: inv.created_by }, title: t('created_by.publishable_hint') },
    t('created_by.publishable_key'));
}

// table lays rows out under headers. Each cell carries its column's name,
// which a narrow screen shows beside the value when the rows become cards
// (base.css); the roles keep it a table for screen readers then too.
function table(headers, rows, { numeric = [] } = {}) {
  for (const tr of rows) {
    tr.setAttribute('role', 'row');
    [...tr.children].forEach((td, i) => {
      td.setAttribute('role', 'cell');
      if (headers[i]) td.dataset.label = headers[i];
    });
  }
  return el('div', { class: 'table-wrap' }, el('table', { role: 'table' },
    el('thead', {}, el('tr', { role: 'row' }, headers.map((h, i) => el('th', { role: 'columnheader', scope: 'col', class: numeric.includes(i) ? 'num' : undefined }, h)))),
    el('tbody', {}, rows)));
}

function cell(content, numeric) {
  return el('td', { class: numeric ? 'num' : undefined }, content);
}

function card(title, ...children) {
  return el('section', { class: 'card' }, title ? el('h2', {}, title) : null, children);
}

// mainCard is a view's first card: its title is the page's <h1>.
function mainCard(title, ...children) {
  return el('section', { class: 'card' }, el('h1', {}, title), children);
}

// short shows a long address or id by its head and tail, whole in its
// title, with a button that copies it whole.
function short(value) {
  if (!value) return t('common.none');
  return el('span', { class: 'short' }, el('code', { title: value }, shorten(value)),
    value.length > 20 ? el('button', { type: 'button', class: 'copy', dataset: { copyText: value }, 'aria-label': t('common.copy_value', { value }) }, t('common.copy')) : null);
}

// fiats are the currencies an invoice may be priced in.
const fiats = (() => {
  try { return JSON.parse(document.getElementById('fiats')?.textContent || '[]') || []; } catch { return []; }
})();

// explorers are the block explorer URLs by chain, with {txid}; a chain
// without one (a simulated chain) shows its txids without a link.
const explorers = (() => {
  try { return JSON.parse(document.getElementById('explorers')?.textContent || '{}') || {}; } catch { return {}; }
})();

// txShort is short(txid), linked to the explorer of the asset's chain when
// the operator named one (a txid is hex: anything else gets no link).
function txShort(asset, txid) {
  const url = explorers[assetInfo(asset).chain];
  if (!txid || !url || !/^(0x)?[0-9a-fA-F]{1,128}$/.test(txid)) return short(txid);
  const box = short(txid);
  const code = box.querySelector('code');
  const link = el('a', { class: 'tx', href: url.replace('{txid}', txid), target: '_blank', rel: 'noopener noreferrer' });
  code.replaceWith(link);
  link.append(code);
  return box;
}

function copyable(id, value) {
  return el('div', { class: 'copy-row' }, el('code', { id, class: 'wrap' }, value),
    el('button', { type: 'button', class: 'copy', dataset: { copy: id } }, t('common.copy')));
}

// --- balances and chart ----------------------------------------------------

async function balances() {
  const rows = (account.balances || []).map((b) => el('tr', { dataset: { asset: b.asset } },
    cell(el('strong', {}, b.asset)),
    cell(b.available, true),
    cell(b.pending, true),
    cell(b.usd_value === null || b.usd_value === undefined ? t('common.none') : '$' + b.usd_value, true)));
  rows.push(el('tr', { class: 'total' }, cell(t('balances.total')), cell(''), cell(''),
    cell(account.total_usd === null || account.total_usd === undefined ? t('common.none') : '$' + account.total_usd, true)));
  const balancesCard = mainCard(t('balances.title'),
    table([t('balances.asset'), t('balances.available'), t('balances.pending'), t('balances.usd')], rows, { numeric: [1, 2, 3] }));
  balancesCard.id = 'balances';
  return el('div', {}, balancesCard, await volumeChart());
}

// volumeChart sums, per coin and UTC day, the payments of the newest
// invoices (GET /v1/invoices) over the last CHART_DAYS days, today being
// the server's UTC day, exactly (in base units), and draws one bar chart
// per coin: coins have no common scale while USD prices are unknown.
async function volumeChart() {
  const dayMs = 86400000;
  const today = Math.floor((Date.now() + skewMs) / dayMs);
  const first = today - CHART_DAYS + 1;
  const sums = new Map(); // asset -> BigInt[CHART_DAYS]
  let after = '';
  let pages = 0;
  let more = true;
  let oldestSeen = Infinity;
  while (more && pages < CHART_MAX_PAGES && oldestSeen >= first * dayMs - 7 * dayMs) {
    const res = await api('GET', '/invoices?limit=100' + (after ? '&starting_after=' + encodeURIComponent(after) : ''));
    if (!res.ok) return card(t('chart.title', { days: CHART_DAYS }), el('p', { class: 'notice bad' }, errorText(res)));
    pages++;
    for (const inv of res.data.data) {
      oldestSeen = Math.min(oldestSeen, inv.created_at);
      const { decimals } = assetInfo(inv.asset);
      for (const p of inv.payments || []) {
        if (p.status === 'reverted') continue;
        const day = Math.floor(p.detected_at / dayMs);
        if (day < first || day > today) continue;
        if (!sums.has(inv.asset)) sums.set(inv.asset, new Array(CHART_DAYS).fill(0n));
        sums.get(inv.asset)[day - first] += toUnits(p.amount, decimals);
      }
    }
    more = res.data.has_more;
    after = res.data.data.length ? res.data.data[res.data.data.length - 1].id : '';
  }
  const section = card(t('chart.title', { days: CHART_DAYS }));
  section.id = 'chart';
  if (sums.size === 0) {
    section.append(el('p', { class: 'muted' }, t('chart.empty', { days: CHART_DAYS })));
    return section;
  }
  const charts = el('div', { class: 'charts' });
  for (const [asset, days] of [...sums.entries()].sort()) {
    charts.append(barChart(asset, days, first, dayMs));
  }
  section.append(charts);
  if (more) section.append(el('p', { class: 'hint' }, t('chart.partial', { count: pages * 100 })));
  return section;
}

function barChart(asset, days, firstDay, dayMs) {
  const { decimals } = assetInfo(asset);
  const w = 300, h = 120, pad = 18, gap = 3;
  const max = days.reduce((m, v) => (v > m ? v : m), 0n);
  const total = days.reduce((s, v) => s + v, 0n);
  const barW = (w - gap * (days.length - 1)) / days.length;
  const label = (i) => new Date((firstDay + i) * dayMs).toISOString().slice(5, 10);
  const chart = svg('svg', { viewBox: `0 0 ${w} ${h + pad}`, role: 'img', 'aria-label': asset });
  days.forEach((v, i) => {
    // Heights are a ratio computed in integers, then scaled: never money.
    const ratio = max === 0n ? 0 : Number((v * 1000n) / max) / 1000;
    const bh = v === 0n ? 0 : Math.max(2, ratio * (h - 4));
    const bar = svg('rect', { class: 'bar', x: (i * (barW + gap)).toFixed(1), y: (h - bh).toFixed(1), width: barW.toFixed(1), height: bh.toFixed(1) },
      svg('title', {}, t('chart.bar', { day: label(i), amount: fromUnits(v, decimals), asset })));
    chart.append(bar);
  });
  chart.append(svg('line', { class: 'axis', x1: 0, y1: h + 0.5, x2: w, y2: h + 0.5 }));
  chart.append(svg('text', { x: 0, y: h + 13 }, label(0)));
  chart.append(svg('text', { x: w, y: h + 13, 'text-anchor': 'end' }, label(days.length - 1)));
  return el('figure', { class: 'chart', dataset: { asset } },
    el('h3', {}, t('chart.total', { asset, amount: fromUnits(total, decimals) })),
    chart);
}

// --- invoices --------------------------------------------------------------

// Pagination keeps the cursors of the pages before this one, so "Previous" works.
let cursorStack = [];

// The invoice list's filters, kept in the URL fragment (#/invoices?q=…)
// so that a search can be bookmarked, shared and paged.
const INVOICE_FILTERS = ['q', 'status', 'asset', 'settlement', 'from', 'to'];

// dayMs turns a date input's YYYY-MM-DD into Unix ms at 00:00 UTC; next
// moves to the following day, for an inclusive end date.
function dayMs(value, next) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
  if (!m) return null;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (next ? 1 : 0));
}

// periodQuery is the API's created_gte / created_lt for from..to (UTC days).
function periodQuery(from, to) {
  const q = new URLSearchParams();
  const gte = dayMs(from, false);
  const lt = dayMs(to, true);
  if (gte !== null) q.set('created_gte', String(gte));
  if (lt !== null) q.set('created_lt', String(lt));
  return q;
}

async function invoiceList(params) {
  const f = Object.fromEntries(INVOICE_FILTERS.map((k) => [k, params.get(k) || '']));
  const after = params.get('after') || '';
  if (!after) cursorStack = [];
  const query = periodQuery(f.from, f.to);
  query.set('limit', '20');
  for (const k of ['q', 'status', 'asset', 'settlement']) if (f[k]) query.set(k, f[k]);
  if (after) query.set('starting_after', after);
  const res = await api('GET', '/invoices?' + query);

  const filterHash = (extra) => {
    const h = new URLSearchParams();
    for (const k of INVOICE_FILTERS) if (f[k]) h.set(k, f[k]);
    for (const [k, v] of Object.entries(extra || {})) {
      if (v) h.set(k, v);
      else h.delete(k);
    }
    const qs = h.toString();
    return '#/invoices' + (qs ? '?' + qs : '');
  };
  const form = el('form', { id: 'invoice-search', class: 'filters', role: 'search', autocomplete: 'off' },
    // What can be searched is said in the label, not a placeholder: a
    // placeholder is cut at 390 px, and gone once typing starts.
    el('div', { class: 'filter wide-field' }, el('label', { for: 'search-q' }, t('invoices.search'), ' ', el('span', { class: 'label-hint' }, t('invoices.search_hint'))),
      el('input', { id: 'search-q', name: 'q', type: 'search', value: f.q, maxlength: 200, spellcheck: 'false' })),
    el('div', { class: 'filter' }, el('label', { for: 'status-filter' }, t('invoices.filter')),
      el('select', { id: 'status-filter', name: 'status', on: { change: () => form.requestSubmit() } },
        el('option', { value: '' }, t('invoices.all')),
        STATUSES.map((st) => el('option', { value: st, selected: st === f.status }, t('status.' + st))))),
    el('div', { class: 'filter' }, el('label', { for: 'asset-filter' }, t('invoices.asset')),
      el('select', { id: 'asset-filter', name: 'asset', on: { change: () => form.requestSubmit() } },
        el('option', { value: '' }, t('invoices.all')),
        (account.assets || []).map((a) => el('option', { value: a.asset, selected: a.asset === f.asset }, a.asset)))),
    el('div', { class: 'filter' }, el('label', { for: 'from-filter' }, t('invoices.from')),
      el('input', { id: 'from-filter', name: 'from', type: 'date', value: f.from })),
    el('div', { class: 'filter' }, el('label', { for: 'to-filter' }, t('invoices.to')),
      el('input', { id: 'to-filter', name: 'to', type: 'date', value: f.to })),
    el('div', { class: 'filter actions-inline' },
      el('button', { type: 'submit', id: 'search-submit' }, t('invoices.apply')),
      INVOICE_FILTERS.some((k) => f[k]) ? el('a', { class: 'button secondary', id: 'search-clear', href: '#/invoices' }, t('invoices.clear')) : null));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const h = new URLSearchParams();
    for (const k of ['q', 'status', 'asset', 'from', 'to']) {
      const v = (form.elements[k].value || '').trim();
      if (v) h.set(k, v);
    }
    if (f.settlement) h.set('settlement', f.settlement);
    cursorStack = [];
    location.hash = '#/invoices' + (h.toString() ? '?' + h : '');
  });
  const section = mainCard(t('invoices.title'), form,
    f.settlement ? el('p', { class: 'notice warn', id: 'settlement-filter' }, t('invoices.settlement_filter', { status: t('settlement.' + f.settlement) }),
      ' ', el('a', { href: filterHash({ settlement: '' }) }, t('invoices.clear'))) : null);
  section.id = 'invoices';
  if (!res.ok) {
    section.append(el('p', { class: 'notice bad', id: 'invoices-error' }, errorText(res)));
    return section;
  }
  const list = res.data.data;
  if (list.length === 0) {
    section.append(el('p', { class: 'muted', id: 'invoices-empty' }, INVOICE_FILTERS.some((k) => f[k]) ? t('invoices.none_match') : t('invoices.empty')));
  } else {
    section.append(table(
      [t('invoices.id'), t('invoices.created'), t('invoices.amount'), t('invoices.received'), t('invoices.status'), t('invoices.order')],
      list.map((inv) => el('tr', { dataset: { id: inv.id } },
        cell(el('a', { href: '#/invoices/' + inv.id }, inv.id)),
        cell(formatTime(inv.created_at)),
        cell(inv.amount + ' ' + inv.asset, true),
        cell(inv.amount_received, true),
        cell(badge(inv.status)),
        cell([inv.order_id ? el('span', {}, inv.order_id) : null, createdByBadge(inv)]))),
      { numeric: [2, 3] }));
  }
  const pager = el('div', { class: 'pager' });
  if (after) {
    pager.append(el('button', { type: 'button', class: 'secondary', id: 'prev-page', on: { click: () => {
      const prev = cursorStack.pop() || '';
      location.hash = prev ? filterHash({ after: prev }) : filterHash();
    } } }, t('invoices.prev')));
  }
  if (res.data.has_more && list.length) {
    pager.append(el('button', { type: 'button', class: 'secondary', id: 'next-page', on: { click: () => {
      cursorStack.push(after);
      location.hash = filterHash({ after: list[list.length - 1].id });
    } } }, t('invoices.next')));
  }
  section.append(pager);
  return section;
}

async function invoiceDetail(id) {
  const res = await api('GET', '/invoices/' + encodeURIComponent(id));
  if (!res.ok) return mainCard(t('invoice.title', { id }), el('p', { class: 'notice bad' }, errorText(res)));
  const inv = res.data;
  const prop = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
  const byPublishable = inv.created_by === 'publishable_key';
  // Order last: an order id is the merchant's customer's text, not a placeholder.
  const notice = !byPublishable ? null : el('p', { class: 'notice warn', id: 'created-by-notice' }, inv.order_id
    ? t('invoice.publishable_notice', { amount: inv.amount, asset: inv.asset, order: inv.order_id })
    : t('invoice.publishable_notice_no_order', { amount: inv.amount, asset: inv.asset }));
  const details = mainCard(t('invoice.title', { id: inv.id }),
    el('p', {}, el('a', { href: '#/invoices' }, '← ' + t('invoice.back'))),
    notice,
    el('dl', { class: 'props' },
      prop(t('invoice.status'), badge(inv.status)),
      prop(t('invoice.created_by'), el('span', { id: 'invoice-created-by' }, createdByBadge(inv) || t('created_by.secret_key'))),
      prop(t('invoice.amount'), inv.amount + ' ' + inv.asset),
      prop(t('invoice.pay_amount'), el('code', {}, inv.pay_amount)),
      prop(t('invoice.pay_address'), short(inv.pay_address)),
      prop(t('invoice.received'), inv.amount_received + ' ' + inv.asset),
      prop(t('invoice.fee'), inv.fee + ' ' + inv.asset + ' (' + inv.fee_bps / 100 + ' %)'),
      inv.settle_asset ? prop(t('invoice.settle'), inv.settle_asset) : null,
      inv.order_id ? prop(t('invoice.order'), inv.order_id) : null,
      prop(t('invoice.created'), formatTime(inv.created_at)),
      prop(t('invoice.expires'), formatTime(inv.expires_at)),
      inv.paid_at ? prop(t('invoice.paid_at'), formatTime(inv.paid_at)) : null,
      prop(t('invoice.checkout'), el('a', { href: '/pay/' + inv.id, target: '_blank', rel: 'noopener' }, '/pay/' + inv.id))));
  details.id = 'invoice-detail';
  details.dataset.status = inv.status;
  details.dataset.createdBy = inv.created_by;

  const payments = card(t('invoice.payments'));
  payments.id = 'payments';
  if (!inv.payments.length) {
    payments.append(el('p', { class: 'muted' }, t('invoice.no_payments')));
  } else {
    payments.append(table(
      [t('payment.txid'), t('payment.amount'), t('payment.confirmations'), t('payment.status'), t('payment.detected')],
      inv.payments.map((p) => el('tr', {},
        cell(txShort(inv.asset, p.txid)),
        cell(p.amount, true),
        cell(String(p.confirmations), true),
        cell(t('payment.status_' + p.status) + (p.late ? ' (' + t('payment.late') + ')' : '')),
        cell(formatTime(p.detected_at)))),
      { numeric: [1, 2] }));
  }
  const refunds = card(t('refund.list'));
  refunds.id = 'refunds';
  if ((inv.refunds || []).length) {
    refunds.append(table([t('payouts.id'), t('payouts.amount'), t('payouts.status'), t('payouts.txid'), t('payouts.created')],
      inv.refunds.map((r) => el('tr', { dataset: { id: r.id, status: r.status } }, cell(short(r.id)), cell(r.amount + ' ' + inv.asset, true), cell(t('payouts.status_' + r.status)),
        cell(txShort(inv.asset, r.txid || '')), cell(formatTime(r.created_at)))), { numeric: [1] }));
  }
  if (inv.amount_received !== '0') refunds.append(refundForm(inv));
  return el('div', {}, details, payments, refunds.childElementCount > 1 ? refunds : null, await deliveries(inv.id));
}

// deliveries shows GET /v1/webhooks/deliveries?invoice_id=, or says why it cannot.
async function deliveries(invoiceId) {
  const section = card(t('deliveries.title'));
  section.id = 'deliveries';
  section.append(await deliveryTable('?invoice_id=' + encodeURIComponent(invoiceId), t('deliveries.empty'), false));
  return section;
}

// deliveryTable lists deliveries (query: the API's filters), each with a
// retry button unless delivered; withInvoice adds the invoice's column.
async function deliveryTable(query, emptyText, withInvoice) {
  const res = await api('GET', '/webhooks/deliveries' + query);
  if (res.status === 404 || res.status === 405) return el('p', { class: 'muted' }, t('deliveries.unavailable'));
  if (!res.ok) return el('p', { class: 'muted' }, res.status >= 500 || res.status === 0 ? t('deliveries.down') : errorText(res));
  const list = (res.data && res.data.data) || [];
  if (!list.length) return el('p', { class: 'muted', id: 'deliveries-empty' }, emptyText);
  const headers = [t('deliveries.event'), t('deliveries.status'), t('deliveries.attempts'), t('deliveries.last'), t('deliveries.created'), t('deliveries.action')];
  if (withInvoice) headers.splice(1, 0, t('deliveries.invoice'));
  return table(headers, list.map((d) => {
    const attempts = d.attempts || [];
    const last = attempts[attempts.length - 1];
    const lastText = last ? (last.status_code ? 'HTTP ' + last.status_code : last.error || '') : t('common.none');
    const retry = d.status !== 'delivered' ? el('button', { type: 'button', class: 'secondary', dataset: { retry: d.id }, on: { click: async (e) => {
      e.target.disabled = true;
      const r = await api('POST', '/webhooks/deliveries/' + encodeURIComponent(d.id) + '/retry', {}, { idempotent: true });
      e.target.replaceWith(el('span', { class: r.ok ? 'muted' : 'error' }, r.ok ? t('deliveries.retried') : errorText(r)));
    } } }, t('deliveries.retry')) : null;
    const cells = [cell(d.event_type), cell(t('deliveries.status_' + d.status)), cell(String(attempts.length), true), cell(lastText), cell(formatTime(d.created_at)), cell(retry)];
    if (withInvoice) cells.splice(1, 0, cell(d.invoice_id ? el('a', { href: '#/invoices/' + d.invoice_id }, shorten(d.invoice_id)) : t('common.none')));
    return el('tr', { dataset: { id: d.id, status: d.status } }, cells);
  }), { numeric: [withInvoice ? 3 : 2] });
}

// --- webhooks --------------------------------------------------------------

// webhooksView is the account's delivery log (GET /v1/webhooks/deliveries)
// with its filters, and the test button (POST /v1/webhooks/test).
async function webhooksView(params) {
  const status = params.get('status') || '';
  const invoice = params.get('invoice_id') || '';
  const query = new URLSearchParams({ limit: '50' });
  if (status) query.set('status', status);
  if (invoice) query.set('invoice_id', invoice);
  const form = el('form', { id: 'deliveries-filter', class: 'filters', autocomplete: 'off' },
    el('div', { class: 'filter' }, el('label', { for: 'delivery-status' }, t('deliveries.status')),
      el('select', { id: 'delivery-status', name: 'status', on: { change: () => form.requestSubmit() } },
        el('option', { value: '' }, t('invoices.all')),
        ['pending', 'delivered', 'failed'].map((st) => el('option', { value: st, selected: st === status }, t('deliveries.status_' + st))))),
    el('div', { class: 'filter wide-field' }, el('label', { for: 'delivery-invoice' }, t('deliveries.invoice')),
      el('input', { id: 'delivery-invoice', name: 'invoice_id', type: 'search', value: invoice, placeholder: 'inv_…', spellcheck: 'false' })),
    el('div', { class: 'filter actions-inline' }, el('button', { type: 'submit' }, t('invoices.apply'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const h = new URLSearchParams();
    if (form.elements.status.value) h.set('status', form.elements.status.value);
    if (form.elements.invoice_id.value.trim()) h.set('invoice_id', form.elements.invoice_id.value.trim());
    location.hash = '#/webhooks' + (h.toString() ? '?' + h : '');
  });
  const result = el('div', { id: 'webhook-test-result', role: 'status' });
  const testButton = el('button', { type: 'button', id: 'webhook-test', class: 'secondary' }, t('webhooks.test'));
  testButton.addEventListener('click', async () => {
    testButton.disabled = true;
    result.replaceChildren();
    try {
      const r = await api('POST', '/webhooks/test', {}, { idempotent: true });
      if (!r.ok) {
        result.replaceChildren(el('p', { class: 'notice bad' }, errorText(r)));
        return;
      }
      const a = r.data.attempt || {};
      result.replaceChildren(el('p', { class: 'notice ' + (r.data.delivered ? 'ok' : 'bad'), dataset: { delivered: String(r.data.delivered) } },
        r.data.delivered ? t('webhooks.test_ok', { status: a.status_code, ms: a.latency_ms })
          : t('webhooks.test_failed', { reason: a.status_code ? 'HTTP ' + a.status_code : a.error || '' })));
    } finally {
      testButton.disabled = false;
    }
  });
  const section = mainCard(t('webhooks.title'),
    el('p', { class: 'hint' }, account.webhook_url ? t('webhooks.sent_to', { url: account.webhook_url }) : t('webhooks.no_url')),
    el('div', { class: 'actions' }, testButton, el('a', { href: '#/settings' }, t('webhooks.settings'))), result, form,
    await deliveryTable('?' + query, status || invoice ? t('invoices.none_match') : t('webhooks.empty'), true));
  section.id = 'webhooks';
  return section;
}

// --- exports ---------------------------------------------------------------

// exportsView offers the CSV exports of a period (UTC days) as plain
// links to GET /v1/exports/*.csv: the browser downloads the stream itself,
// with the session cookie, whatever its size.
function exportsView(params) {
  const from = el('input', { id: 'export-from', type: 'date', value: params.get('from') || '' });
  const to = el('input', { id: 'export-to', type: 'date', value: params.get('to') || '' });
  const links = ['invoices', 'payouts', 'ledger'].map((kind) => el('a', { class: 'button secondary', id: 'export-' + kind, download: '' }, t('exports.' + kind)));
  const sync = () => {
    const q = periodQuery(from.value, to.value).toString();
    links.forEach((a, i) => a.setAttribute('href', '/v1/exports/' + ['invoices', 'payouts', 'ledger'][i] + '.csv' + (q ? '?' + q : '')));
  };
  from.addEventListener('input', sync);
  to.addEventListener('input', sync);
  sync();
  const section = mainCard(t('exports.title'),
    el('p', { class: 'hint' }, t('exports.hint')),
    el('div', { class: 'filters' },
      el('div', { class: 'filter' }, el('label', { for: 'export-from' }, t('invoices.from')), from),
      el('div', { class: 'filter' }, el('label', { for: 'export-to' }, t('invoices.to')), to)),
    el('div', { class: 'actions' }, links));
  section.id = 'exports';
  return section;
}

// --- banners ---------------------------------------------------------------

// banners are what needs the merchant's attention on every page: a debt
// (money rule 6: a negative available balance) and conversions waiting for
// a price (rule 3).
async function banners() {
  const box = el('div', { id: 'banners' });
  for (const b of account.balances || []) {
    if (String(b.available).startsWith('-')) {
      box.append(el('p', { class: 'notice bad banner', dataset: { debt: b.asset } }, t('banner.debt', { amount: b.available.slice(1), asset: b.asset })));
    }
  }
  const res = await api('GET', '/invoices?settlement=waiting_for_price&limit=100');
  if (res.ok && res.data.data.length) {
    const n = res.data.data.length + (res.data.has_more ? '+' : '');
    box.append(el('p', { class: 'notice warn banner', id: 'banner-waiting' },
      t('banner.waiting', { count: n, amounts: waitingAmounts(res.data.data) }), ' ',
      el('a', { href: '#/invoices?settlement=waiting_for_price' }, t('banner.show'))));
  }
  return box;
}

// waitingAmounts says, per coin paid and coin to convert into, what waits
// for a price: each invoice's net (amount_received − fee, which is what
// its payments credited), summed exactly. The coin into is the invoice's
// settle_asset, else the account's consolidate_to.
function waitingAmounts(invoices) {
  const sums = new Map(); // "asset>target" -> BigInt base units
  for (const inv of invoices) {
    const { decimals } = assetInfo(inv.asset);
    const key = inv.asset + '>' + (inv.settle_asset || account.consolidate_to || '');
    sums.set(key, (sums.get(key) || 0n) + toUnits(inv.amount_received, decimals) - toUnits(inv.fee, decimals));
  }
  return [...sums].map(([key, units]) => {
    const [asset, target] = key.split('>');
    const amount = fromUnits(units, assetInfo(asset).decimals);
    return target ? t('banner.waiting_into', { amount, asset, target }) : amount + ' ' + asset;
  }).join('; ');
}

// --- new invoice -----------------------------------------------------------

function newInvoice() {
  const assets = account.assets || [];
  const assetSelect = el('select', { id: 'new-asset', name: 'asset', on: { change: () => syncSettle(), input: () => syncSettle() } },
    assets.map((a) => el('option', { value: a.asset }, a.asset + ' · ' + a.name)));
  const settleSelect = el('select', { id: 'new-settle', name: 'settle_as' });
  // settle_as must name another coin than the invoice's (the API answers
  // 400 otherwise), so the chosen asset is not offered; a choice that
  // became the asset falls back to no conversion.
  const syncSettle = () => {
    const keep = settleSelect.value === assetSelect.value ? '' : settleSelect.value;
    settleSelect.replaceChildren(el('option', { value: '' }, t('new.settle_none')),
      ...assets.filter((a) => a.asset !== assetSelect.value).map((a) => el('option', { value: a.asset }, a.asset)));
    settleSelect.value = keep;
  };
  syncSettle();
  const form = el('form', { id: 'new-invoice-form', autocomplete: 'off' },
    el('div', { class: 'grid2' },
      el('div', {}, el('label', { for: 'new-asset' }, t('new.asset')), assetSelect),
      el('div', {}, el('label', { for: 'new-amount' }, t('new.amount')),
        el('input', { id: 'new-amount', name: 'amount', inputmode: 'decimal', required: true, placeholder: '49.99', pattern: '[0-9]+(\\.[0-9]+)?' })),
      // A price in a fiat currency (price_amount, price_currency): the
      // gateway converts it at its current price into the coin.
      el('div', {}, el('label', { for: 'new-currency' }, t('new.price_currency')),
        el('select', { id: 'new-currency', name: 'price_currency' }, el('option', { value: '' }, t('new.price_in_coin')),
          fiats.map((code) => el('option', { value: code }, code)))),
      el('div', {}, el('label', { for: 'new-order' }, t('new.order_id')),
        el('input', { id: 'new-order', name: 'order_id', maxlength: 200 })),
      el('div', {}, el('label', { for: 'new-expires' }, t('new.expires')),
        el('input', { id: 'new-expires', name: 'expires', type: 'number', min: 1, max: 10080, value: 60 })),
      el('div', {}, el('label', { for: 'new-settle' }, t('new.settle')), settleSelect)),
    el('label', { for: 'new-description' }, t('new.description')),
    el('input', { id: 'new-description', name: 'description', maxlength: 500 }),
    el('p', { id: 'new-error', class: 'error', hidden: true }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'new-submit' }, t('new.submit'))));
  const result = el('div', { id: 'new-result' });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const errorBox = form.querySelector('#new-error');
    errorBox.hidden = true;
    const body = { asset: form.asset.value };
    const currency = form.elements.price_currency.value;
    if (currency) {
      body.price_amount = form.amount.value.trim();
      body.price_currency = currency;
    } else {
      body.amount = form.amount.value.trim();
    }
    if (form.elements.description.value.trim()) body.description = form.elements.description.value.trim();
    if (form.order_id.value.trim()) body.order_id = form.order_id.value.trim();
    if (form.settle_as.value) body.settle_as = form.settle_as.value;
    const minutes = Number(form.expires.value);
    if (minutes > 0) body.expires_in = Math.round(minutes * 60);
    const submit = form.querySelector('#new-submit');
    submit.disabled = true;
    try {
      const res = await api('POST', '/invoices', body, { idempotent: true });
      if (!res.ok) {
        errorBox.textContent = errorText(res);
        errorBox.hidden = false;
        return;
      }
      const inv = res.data;
      result.replaceChildren(el('div', { class: 'notice ok', dataset: { id: inv.id } },
        el('p', {}, t('new.created', { id: inv.id })),
        el('p', { class: 'actions' },
          el('a', { class: 'button', id: 'new-checkout-link', href: '/pay/' + inv.id, target: '_blank', rel: 'noopener' }, t('new.open_checkout')),
          el('a', { class: 'button secondary', href: '#/invoices/' + inv.id }, t('new.view')))));
      form.reset();
      syncSettle(); // the reset asset is offered again, and its own coin not
    } finally {
      submit.disabled = false;
    }
  });
  const section = mainCard(t('new.title'), form, result);
  section.id = 'new-invoice';
  return section;
}

// --- payouts ---------------------------------------------------------------

async function payouts() {
  const section = mainCard(t('payouts.title'), withdrawForm());
  section.id = 'payouts';
  const res = await api('GET', '/payouts?limit=100');
  if (res.status === 404 || res.status === 405) {
    section.append(el('p', { class: 'muted', id: 'payouts-empty' }, t('payouts.unavailable')));
    return section;
  }
  if (!res.ok) {
    section.append(el('p', { class: 'notice bad' }, errorText(res)));
    return section;
  }
  const list = (res.data && res.data.data) || [];
  if (!list.length) {
    section.append(el('p', { class: 'muted', id: 'payouts-empty' }, t('payouts.empty')));
    return section;
  }
  // A payout still requested can be cancelled: its button goes under its
  // status, so the table keeps to the width of a 1280 px screen, a payout
  // with a transaction too (TestBrowser measures it).
  const cancelButton = (p) => el('button', { type: 'button', class: 'secondary', dataset: { cancel: p.id }, on: { click: async (e) => {
    e.target.disabled = true;
    const r = await api('POST', '/payouts/' + encodeURIComponent(p.id) + '/cancel', {}, { idempotent: true });
    if (r.ok) route();
    else e.target.replaceWith(el('span', { class: 'error' }, errorText(r)));
  } } }, t('payouts.cancel'));
  // Its kind goes under the payout's id, for the same reason.
  section.append(table(
    [t('payouts.id'), t('payouts.amount'), t('payouts.network_fee'), t('payouts.to'), t('payouts.txid'), t('payouts.status'), t('payouts.created')],
    list.map((p) => el('tr', { dataset: { id: p.id, status: p.status, kind: p.kind || 'instant' } },
      cell(el('div', { class: 'stack' }, el('code', { class: 'nowrap', title: p.id }, shorten(p.id)),
        el('span', { class: 'payout-kind' }, t('payouts.kind_' + (p.kind || 'instant'))))),
      cell(p.amount + ' ' + p.asset, true), cell(p.network_fee ?? t('common.none'), true),
      cell(short(p.to_address || p.payout_address || '')), cell(txShort(p.asset, p.txid || '')),
      cell(el('div', { class: 'stack' }, el('span', { class: 'payout-status' }, t('payouts.status_' + p.status)), p.status === 'requested' ? cancelButton(p) : null)),
      cell(formatTime(p.created_at)))),
    { numeric: [1, 2] }));
  return section;
}

// withdrawForm is POST /v1/withdrawals: the whole available balance (or an
// amount) to the payout address (or another).
function withdrawForm() {
  const assets = account.assets || [];
  const form = el('form', { id: 'withdraw-form', class: 'subform', autocomplete: 'off' },
    el('h2', {}, t('withdraw.title')),
    el('div', { class: 'grid2' },
      el('div', {}, el('label', { for: 'withdraw-asset' }, t('new.asset')),
        el('select', { id: 'withdraw-asset', name: 'asset' }, assets.map((a) => el('option', { value: a.asset }, a.asset)))),
      el('div', {}, el('label', { for: 'withdraw-amount' }, t('withdraw.amount')),
        el('input', { id: 'withdraw-amount', name: 'amount', inputmode: 'decimal', placeholder: t('withdraw.amount_hint') })),
      el('div', {}, el('label', { for: 'withdraw-to' }, t('withdraw.to')),
        el('input', { id: 'withdraw-to', name: 'to_address', spellcheck: 'false', autocapitalize: 'off', placeholder: t('withdraw.to_hint') }))),
    el('p', { id: 'withdraw-error', class: 'error', role: 'alert', hidden: true }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'withdraw-submit' }, t('withdraw.submit'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const errorBox = form.querySelector('#withdraw-error');
    errorBox.hidden = true;
    const body = { asset: form.elements.asset.value };
    if (form.elements.amount.value.trim()) body.amount = form.elements.amount.value.trim();
    if (form.elements.to_address.value.trim()) body.to_address = form.elements.to_address.value.trim();
    const submit = form.querySelector('#withdraw-submit');
    submit.disabled = true;
    try {
      const res = await api('POST', '/withdrawals', body, { idempotent: true });
      if (!res.ok) {
        errorBox.textContent = errorText(res);
        errorBox.hidden = false;
        return;
      }
      flash(t('withdraw.done', { amount: res.data.amount, asset: res.data.asset }), 'ok');
      route();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// refundForm is POST /v1/invoices/{id}/refunds.
function refundForm(inv) {
  const form = el('form', { id: 'refund-form', class: 'subform', autocomplete: 'off' },
    el('h2', {}, t('refund.title')),
    el('div', { class: 'grid2' },
      el('div', {}, el('label', { for: 'refund-amount' }, t('refund.amount', { asset: inv.asset })),
        el('input', { id: 'refund-amount', name: 'amount', inputmode: 'decimal', placeholder: t('refund.amount_hint') })),
      el('div', {}, el('label', { for: 'refund-to' }, t('refund.to')),
        el('input', { id: 'refund-to', name: 'to_address', required: true, spellcheck: 'false', autocapitalize: 'off' }))),
    el('p', { class: 'hint' }, t('refund.hint')),
    el('p', { id: 'refund-error', class: 'error', role: 'alert', hidden: true }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'refund-submit' }, t('refund.submit'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const errorBox = form.querySelector('#refund-error');
    errorBox.hidden = true;
    const body = { to_address: form.elements.to_address.value.trim() };
    if (form.elements.amount.value.trim()) body.amount = form.elements.amount.value.trim();
    const submit = form.querySelector('#refund-submit');
    submit.disabled = true;
    try {
      const res = await api('POST', '/invoices/' + encodeURIComponent(inv.id) + '/refunds', body, { idempotent: true });
      if (!res.ok) {
        errorBox.textContent = errorText(res);
        errorBox.hidden = false;
        return;
      }
      flash(t('refund.done', { amount: res.data.amount, asset: res.data.asset }), 'ok');
      route();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// --- settings --------------------------------------------------------------

// confirmButton asks once more before a destructive action.
function confirmButton(id, label, warning, action) {
  const box = el('div', { class: 'actions' });
  const start = el('button', { type: 'button', class: 'secondary', id }, label);
  start.addEventListener('click', () => {
    const yes = el('button', { type: 'button', class: 'danger', id: id + '-confirm' }, t('settings.rotate_confirm'));
    const no = el('button', { type: 'button', class: 'link' }, t('common.cancel'));
    no.addEventListener('click', () => box.replaceChildren(start));
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      await action(box);
    });
    box.replaceChildren(el('span', { class: 'error' }, warning), yes, no);
  });
  box.append(start);
  return box;
}

function secretBox(id, text, secret) {
  return el('div', { class: 'secret-box' }, el('p', {}, el('strong', {}, text)), copyable(id, secret));
}

function settings() {
  const keys = card(t('settings.keys'),
    el('label', {}, t('settings.publishable')),
    copyable('publishable-key', account.publishable_key),
    el('p', { class: 'hint' }, t('settings.publishable_hint')),
    el('label', {}, t('settings.secret')),
    el('p', { class: 'hint' }, t('settings.secret_hint')),
    confirmButton('rotate-keys', t('settings.rotate'), t('settings.rotate_warning'), async (box) => {
      const res = await api('POST', '/account/keys/rotate', {}, { idempotent: true });
      if (!res.ok) {
        box.replaceChildren(el('p', { class: 'error' }, errorText(res)));
        return;
      }
      // The server renewed our session cookie for the new key.
      account.publishable_key = res.data.publishable_key;
      document.getElementById('publishable-key').textContent = res.data.publishable_key;
      box.replaceChildren(secretBox('new-secret-key', t('settings.new_secret'), res.data.secret_key));
    }));
  keys.id = 'settings-keys';

  const urlInput = el('input', { id: 'webhook-url', type: 'url', value: account.webhook_url || '', placeholder: 'https://my-store.example/ipn' });
  const urlStatus = el('span', { id: 'webhook-url-status', role: 'status' });
  const urlForm = el('form', { id: 'webhook-form' },
    el('label', { for: 'webhook-url' }, t('settings.webhook_url')), urlInput,
    el('p', { class: 'hint' }, t('settings.webhook_url_hint')),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, t('common.save')), urlStatus));
  urlForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    urlStatus.textContent = '';
    const res = await api('PATCH', '/account', { webhook_url: urlInput.value.trim() || null }, { idempotent: true });
    urlStatus.className = res.ok ? 'muted' : 'error';
    urlStatus.textContent = res.ok ? t('common.saved') : errorText(res);
  });
  const webhooks = card(t('settings.webhooks'), urlForm,
    el('label', {}, t('settings.webhook_secret')),
    el('p', { class: 'hint' }, t('settings.webhook_secret_hint')),
    confirmButton('rotate-webhook', t('settings.rotate_webhook'), t('settings.webhook_secret_hint'), async (box) => {
      const res = await api('POST', '/account/webhook-secret/rotate', {}, { idempotent: true });
      box.replaceChildren(res.ok ? secretBox('new-webhook-secret', t('settings.new_webhook_secret'), res.data.webhook_secret)
        : el('p', { class: 'error' }, errorText(res)));
    }));
  webhooks.id = 'settings-webhooks';

  const consolidate = el('select', { id: 'consolidate-to' }, el('option', { value: '' }, t('settings.consolidate_none')),
    (account.assets || []).map((a) => el('option', { value: a.asset, selected: a.asset === account.consolidate_to }, a.asset)));
  const consolidateStatus = el('span', { role: 'status' });
  consolidate.addEventListener('change', async () => {
    const res = await api('PATCH', '/account', { consolidate_to: consolidate.value || null }, { idempotent: true });
    consolidateStatus.className = res.ok ? 'muted' : 'error';
    consolidateStatus.textContent = res.ok ? t('common.saved') : errorText(res);
  });

  const payoutsCard = card(t('settings.payouts'), el('p', { class: 'hint' }, t('settings.payouts_hint')),
    el('label', { for: 'consolidate-to' }, t('settings.consolidate')), el('div', { class: 'actions' }, consolidate, consolidateStatus),
    (account.assets || []).map((a) => payoutForm(a)));
  payoutsCard.id = 'settings-payouts';
  return el('div', {}, el('h1', { class: 'page-title' }, t('settings.title')), keys, webhooks, brandingCard(), payoutsCard, signOutEverywhere());
}

// brandingCard is the checkout's branding, PATCH /v1/account: the shop's
// name, logo (https), colour (#rrggbb) and default "Return to store" link.
function brandingCard() {
  const fields = [
    ['display_name', 'text', 'My store'],
    ['logo_url', 'url', 'https://shop.example/logo.png'],
    ['brand_color', 'text', '#0a7d5a'],
    ['default_redirect_url', 'url', 'https://shop.example/thanks'],
  ];
  const inputs = fields.map(([name, type, placeholder]) => el('input', { id: 'branding-' + name, name, type, placeholder,
    value: account[name] || '', spellcheck: 'false', autocapitalize: 'off' }));
  const status = el('span', { id: 'branding-status', role: 'status' });
  const form = el('form', { id: 'branding-form', autocomplete: 'off' },
    el('div', { class: 'grid2' }, fields.map(([name], i) => el('div', {}, el('label', { for: inputs[i].id }, t('branding.' + name)), inputs[i]))),
    el('p', { class: 'hint' }, t('branding.hint')),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'branding-save' }, t('common.save')), status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status.textContent = '';
    const body = {};
    fields.forEach(([name], i) => { body[name] = inputs[i].value.trim() || null; });
    const res = await api('PATCH', '/account', body, { idempotent: true });
    status.className = res.ok ? 'muted' : 'error';
    status.textContent = res.ok ? t('common.saved') : errorText(res);
  });
  const section = card(t('branding.title'), form);
  section.id = 'settings-branding';
  return section;
}

function payoutForm(asset) {
  const current = (account.payout_settings || []).find((p) => p.asset === asset.asset) ||
    { payout_address: '', mode: 'manual', instant_min_amount: '0' };
  const key = asset.asset.replace(/[^A-Za-z0-9]/g, '-');
  const address = el('input', { id: 'payout-address-' + key, value: current.payout_address || '', spellcheck: 'false', autocapitalize: 'off' });
  const mode = el('select', { id: 'payout-mode-' + key },
    el('option', { value: 'manual', selected: current.mode !== 'instant' }, t('settings.mode_manual')),
    el('option', { value: 'instant', selected: current.mode === 'instant' }, t('settings.mode_instant')));
  const min = el('input', { id: 'payout-min-' + key, value: current.instant_min_amount || '0', inputmode: 'decimal' });
  const status = el('span', { id: 'payout-status-' + key, role: 'status' });
  const form = el('form', { class: 'payout-row', dataset: { asset: asset.asset } },
    el('h3', {}, asset.asset + ' · ' + asset.name),
    el('div', { class: 'grid2' },
      el('div', {}, el('label', { for: address.id }, t('settings.payout_address')), address),
      el('div', {}, el('label', { for: mode.id }, t('settings.mode')), mode),
      el('div', {}, el('label', { for: min.id }, t('settings.min') + ' (' + asset.asset + ')'), min)),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'payout-save-' + key }, t('common.save')), status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status.textContent = '';
    const body = { asset: asset.asset, payout_address: address.value.trim(), mode: mode.value };
    if (min.value.trim()) body.instant_min_amount = min.value.trim();
    const res = await api('PUT', '/payout-settings', body, { idempotent: true });
    status.className = res.ok ? 'muted' : 'error';
    status.textContent = res.ok ? t('common.saved') : errorText(res);
  });
  return form;
}

// --- start -----------------------------------------------------------------

route();
