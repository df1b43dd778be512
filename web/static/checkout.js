// The hosted checkout: a countdown to expires_at and live status from the
// public GET /v1/public/invoices/{id}, polled with backoff until the
// invoice is paid, or an hour past its expiry (a late payment is still
// shown; reverted is no end: a payment a reorganisation took away may be
// mined again). The server
// rendered every screen; this script only switches them and fills in
// numbers, and redraws the QR code and wallet link (from
// GET /pay/request/{id}) when the amount due changes.
import { t, el, subtract, svg, wireCopyButtons, shorten } from './common.js';

const root = document.getElementById('checkout');
const id = root.dataset.invoiceId;
const asset = root.dataset.asset;
const payAmount = root.dataset.payAmount;
// What the pay screen asks for (amount due, or pay_amount when nothing is
// due), and what its QR code and wallet link encode: they lag while redrawn.
let sendAmount = root.dataset.sendAmount || payAmount;
let drawnFor = sendAmount;
let requestInFlight = false;
const basePollMs = Math.max(200, Number(root.dataset.pollMs) || 2000);
const maxPollMs = Math.max(basePollMs, Number(root.dataset.maxPollMs) || 15000);
// The block explorer's transaction URL with {txid}, when the chain has one.
const explorerTx = root.dataset.explorerTx || '';
// The shop's name as the server rendered it (the gateway's without branding).
const brandName = document.querySelector('.checkout-head .brand')?.textContent.trim() || t('brand');

// The shop's colour (#rrggbb, checked by the server) replaces the accent
// through the CSSOM, which the CSP allows where a style attribute is not;
// the text on it is black or white, whichever reads better.
const brandColor = root.dataset.brandColor || '';
if (/^#[0-9a-f]{6}$/.test(brandColor)) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(brandColor.slice(i, i + 2), 16));
  const light = 0.299 * r + 0.587 * g + 0.114 * b > 150;
  document.documentElement.style.setProperty('--accent', brandColor);
  document.documentElement.style.setProperty('--accent-text', light ? '#0b0d10' : '#ffffff');
}
// A logo that cannot load is hidden rather than shown broken (the shop's
// name is beside it; the image is decorative, alt="").
const logo = document.getElementById('logo');
if (logo) {
  const hide = () => { logo.hidden = true; };
  if (logo.complete && logo.naturalWidth === 0) hide();
  else logo.addEventListener('error', hide);
}
// The server's clock minus ours, so a wrong phone clock shows the right time left.
const skewMs = (Number(root.dataset.now) || Date.now()) - Date.now();
let expiresAt = Number(root.dataset.expiresAt);
let status = root.dataset.status;

// Paid is the end. Expired is too, except that a payment may still come
// (sent just before the deadline, or after it): the page keeps asking,
// slowly, for LATE_WATCH_MS after expiry, and shows what came. Reverted
// is not an end: its payment may be mined again, and the page then shows paid.
const LATE_WATCH_MS = 3600000;
function finished() {
  return status === 'paid' || (status === 'expired' && Date.now() + skewMs > expiresAt + LATE_WATCH_MS);
}
const MAX_POLLS = 20000; // a bound: about a week at the slowest pace
const byId = (x) => document.getElementById(x);

wireCopyButtons(root, { copied: t('checkout.copied'), failed: t('checkout.copy_failed') });

// --- countdown -------------------------------------------------------------

let countdownTimer = null;
function tick() {
  const box = byId('countdown-box');
  const out = byId('countdown');
  if (!out) return;
  const left = Math.max(0, expiresAt - (Date.now() + skewMs));
  if (left === 0) {
    box.textContent = t('checkout.time_up');
    clearInterval(countdownTimer);
    countdownTimer = null;
    pollSoon(); // the server expires the invoice within a second or two
    return;
  }
  const s = Math.floor(left / 1000);
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hh ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  out.textContent = (hh ? hh + ':' : '') + mm + ':' + ss;
  out.setAttribute('datetime', 'PT' + s + 'S');
  box.classList.toggle('urgent', s < 120);
}

// --- rendering -------------------------------------------------------------

function screenFor(st) {
  return st === 'new' || st === 'partially_paid' ? 'pay' : st;
}

function render(inv) {
  const changed = inv.status !== status || inv.amount_received !== root.dataset.received ||
    String(inv.confirmations) !== root.dataset.confirmations;
  status = inv.status;
  root.dataset.status = status;
  root.dataset.received = inv.amount_received;
  root.dataset.confirmations = String(inv.confirmations);
  if (inv.expires_at) expiresAt = inv.expires_at;

  const badge = byId('status-badge');
  badge.dataset.status = status;
  badge.textContent = t('status.' + status);

  const screen = screenFor(status);
  for (const section of root.querySelectorAll('section.screen')) {
    section.hidden = section.id !== 'screen-' + screen;
  }
  for (const node of root.querySelectorAll('.js-received')) node.textContent = inv.amount_received;

  const due = amountDue(inv);
  const partial = byId('partial');
  partial.hidden = status !== 'partially_paid';
  if (status === 'partially_paid' && due !== null) byId('missing').textContent = due;
  if (screen === 'pay' && due !== null) askFor(due !== '0' ? due : inv.pay_amount || payAmount);

  // "N of M" moves block by block; past M (a chain that waits for its
  // final block) it stays at M.
  const required = Math.max(1, inv.required_confirmations);
  byId('confirm-count').textContent = t('checkout.confirmations_of', { n: Math.min(inv.confirmations, required), required });
  const progress = byId('confirm-progress');
  progress.max = required;
  progress.value = Math.min(inv.confirmations, required);

  const late = byId('expired-received');
  if (status === 'expired') {
    const received = inv.amount_received && inv.amount_received !== '0';
    late.hidden = !received;
    if (received) late.textContent = t('checkout.expired.received', { amount: inv.amount_received, asset });
  }

  // More than asked (money is never lost: the merchant is credited with it).
  const over = byId('overpaid');
  let extra = null;
  if (status === 'confirming' || status === 'paid') {
    try {
      const d = subtract(inv.amount_received || '0', inv.pay_amount || payAmount);
      if (d !== '0' && !d.startsWith('-')) extra = d;
    } catch {
      extra = null;
    }
  }
  over.hidden = extra === null;
  if (extra !== null) over.textContent = t('checkout.overpaid', { amount: extra, asset });

  if (screen === 'pay' && countdownTimer === null && expiresAt > Date.now() + skewMs) {
    countdownTimer = setInterval(tick, 1000);
    tick();
  }
  if (screen !== 'pay' && countdownTimer !== null) {
    clearInterval(countdownTimer);
    countdownTimer = null;
  }
  renderTxs(inv.payments, inv.required_confirmations);
  if (changed) document.title = t('status.' + status) + ' · ' + brandName;
  return changed;
}

// renderTxs lists the invoice's transactions with their confirmations,
// which move block by block, each linked to the chain's explorer when one
// is configured (a txid is hex: anything else gets no link).
function renderTxs(payments, required) {
  if (!Array.isArray(payments)) return;
  const box = byId('txs');
  const list = byId('tx-list');
  box.hidden = payments.length === 0;
  list.replaceChildren(...payments.map((p) => {
    const short = el('code', {}, shorten(p.txid));
    const link = explorerTx && /^(0x)?[0-9a-fA-F]{1,128}$/.test(p.txid)
      ? el('a', { class: 'tx', href: explorerTx.replace('{txid}', p.txid), target: '_blank', rel: 'noopener noreferrer', title: p.txid }, short)
      : el('code', { class: 'tx', title: p.txid }, shorten(p.txid));
    const conf = p.status === 'reverted' ? t('checkout.tx_reverted')
      : t('checkout.tx_confirmations', { n: Math.min(p.confirmations, required), required });
    return el('li', { dataset: { txid: p.txid, status: p.status } }, link, ' ',
      el('span', { class: 'tx-amount' }, p.amount + ' ' + asset), ' ', el('span', { class: 'tx-conf' }, conf));
  }));
}

// amountDue is the API's amount_due; from an API without it, the same
// max(0, pay_amount - amount_received), exactly. null: unreadable.
function amountDue(inv) {
  if (typeof inv.amount_due === 'string') return inv.amount_due;
  try {
    const d = subtract(inv.pay_amount || payAmount, inv.amount_received || '0');
    return d.startsWith('-') ? '0' : d;
  } catch {
    return null;
  }
}

// askFor makes the pay screen ask for amount. Until the QR code and wallet
// link encode it too they stay hidden, so nobody follows a stale amount
// (after a partial payment that meant paying the whole amount again).
function askFor(amount) {
  if (amount !== sendAmount) {
    sendAmount = amount;
    byId('pay-amount-big').textContent = amount;
    byId('pay-amount').textContent = amount;
  }
  const qr = byId('qr');
  const link = byId('wallet-link');
  if (!qr && !link) return; // the server had none for this asset
  const stale = drawnFor !== sendAmount;
  qr?.classList.toggle('stale', stale);
  link?.classList.toggle('stale', stale);
  if (stale) fetchRequest();
}

// fetchRequest redraws the QR code and wallet link from the server, which
// builds them for the first render too: one implementation of both.
async function fetchRequest() {
  if (requestInFlight) return;
  requestInFlight = true;
  try {
    const res = await fetch('/pay/request/' + encodeURIComponent(id), {
      headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'omit',
    });
    if (!res.ok) return; // the next poll tries again
    const req = await res.json();
    // A payment between the poll and this read: wait for the poll to agree.
    if (req.send_amount !== sendAmount || !req.wallet_uri || !req.qr) return;
    const n = req.qr.size;
    const code = svg('svg', { viewBox: `0 0 ${n} ${n}`, role: 'img', 'shape-rendering': 'crispEdges', class: 'qr' },
      svg('title', {}, t('checkout.qr_title')),
      svg('rect', { width: n, height: n, fill: '#fff' }),
      svg('path', { fill: '#000', d: req.qr.path }));
    byId('qr')?.querySelector('svg')?.replaceWith(code);
    byId('wallet-link')?.setAttribute('href', req.wallet_uri);
    drawnFor = req.send_amount;
    byId('qr')?.classList.remove('stale');
    byId('wallet-link')?.classList.remove('stale');
  } catch {
    // the next poll tries again
  } finally {
    requestInFlight = false;
  }
}

// --- polling ---------------------------------------------------------------

let delay = basePollMs;
let failures = 0;
let polls = 0;
let timer = null;
let inFlight = false;

function setLive(ok, text) {
  const live = byId('live');
  live.hidden = false;
  live.classList.toggle('down', !ok);
  live.textContent = text;
}

function schedule(ms) {
  clearTimeout(timer);
  if (finished()) {
    byId('live').hidden = true;
    return;
  }
  if (polls >= MAX_POLLS) {
    setLive(false, t('checkout.stopped'));
    return;
  }
  // A hidden tab polls slowly; it catches up when shown again.
  timer = setTimeout(poll, document.hidden ? Math.max(ms, maxPollMs) : ms);
}

function pollSoon() {
  delay = basePollMs;
  schedule(basePollMs);
}

async function poll() {
  if (inFlight || finished()) return;
  inFlight = true;
  polls++;
  let next;
  try {
    const res = await fetch('/v1/public/invoices/' + encodeURIComponent(id), {
      headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'omit',
    });
    if (res.status === 429) {
      const after = Number(res.headers.get('Retry-After')) || 0;
      next = Math.min(60000, Math.max(after * 1000, delay * 2));
      delay = Math.min(maxPollMs, delay * 2);
    } else if (!res.ok) {
      throw new Error('HTTP ' + res.status);
    } else {
      const changed = render(await res.json());
      failures = 0;
      setLive(true, t('checkout.live'));
      // News: look again soon. No news: back off, up to the maximum.
      delay = changed ? basePollMs : Math.min(maxPollMs, Math.round(delay * 1.5));
      next = delay;
    }
  } catch {
    failures++;
    setLive(false, t('checkout.reconnecting'));
    next = Math.min(60000, basePollMs * 2 ** Math.min(failures, 6));
  } finally {
    inFlight = false;
  }
  schedule(next);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) pollSoon();
});

// Start from what the server rendered.
root.dataset.received = document.querySelector('.js-received')?.textContent.trim() || '0';
if (screenFor(status) === 'pay' && expiresAt > Date.now() + skewMs) {
  countdownTimer = setInterval(tick, 1000);
  tick();
} else if (screenFor(status) === 'pay') {
  tick();
}
if (!finished()) {
  setLive(true, t('checkout.live'));
  schedule(basePollMs);
}
