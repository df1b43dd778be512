// Helpers shared by the checkout and the dashboard. No HTML strings are
// ever assigned to the DOM (the Content-Security-Policy enforces Trusted
// Types): elements are built with el() and filled with textContent.

const catalog = (() => {
  const node = document.getElementById('i18n');
  try { return node ? JSON.parse(node.textContent) : {}; } catch { return {}; }
})();

// t returns the string for key with {name} placeholders filled from vars.
export function t(key, vars) {
  let s = Object.prototype.hasOwnProperty.call(catalog, key) ? catalog[key] : key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
  }
  return s;
}

// el builds an element: el('a', {href: '#', class: 'x', dataset: {id: 1}}, 'text', child).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// svg builds an SVG element the same way.
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

// Amounts are decimal strings; arithmetic is exact, in BigInt base units.

// toUnits("0.015", 8) === 1500000n. Throws on anything but a plain decimal.
export function toUnits(s, decimals) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(s));
  if (!m) throw new Error('not a decimal: ' + s);
  const frac = (m[3] || '').replace(/0+$/, '');
  if (frac.length > decimals) throw new Error('too many decimals: ' + s);
  const units = BigInt(m[2] + frac.padEnd(decimals, '0'));
  return m[1] ? -units : units;
}

// fromUnits(1500000n, 8) === "0.015": canonical, no trailing zeros.
export function fromUnits(units, decimals) {
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString().padStart(decimals + 1, '0');
  let int = digits.slice(0, digits.length - decimals);
  let frac = decimals > 0 ? digits.slice(digits.length - decimals).replace(/0+$/, '') : '';
  return (neg ? '-' : '') + int + (frac ? '.' + frac : '');
}

// decimalsOf counts the decimals a decimal string uses.
export function decimalsOf(s) {
  const i = String(s).indexOf('.');
  return i < 0 ? 0 : String(s).length - i - 1;
}

// subtract returns a - b for decimal strings, exactly.
export function subtract(a, b) {
  const d = Math.max(decimalsOf(a), decimalsOf(b));
  return fromUnits(toUnits(a, d) - toUnits(b, d), d);
}

// copyText copies the text of the element with id into the clipboard and
// shows it on the button; where the Clipboard API is missing (plain HTTP
// outside localhost) it selects the text so the user can copy it.
export async function copyText(button, text, labels) {
  try {
    if (!navigator.clipboard) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    flashButton(button, labels.copied);
  } catch {
    const target = document.getElementById(button.dataset.copy);
    if (target) {
      const range = document.createRange();
      range.selectNodeContents(target);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    flashButton(button, labels.failed);
  }
}

function flashButton(button, label) {
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = label;
  button.classList.add('done');
  clearTimeout(button._timer);
  button._timer = setTimeout(() => {
    button.textContent = original;
    button.classList.remove('done');
  }, 2000);
}

// wireCopyButtons makes every button[data-copy] inside root copy the text
// of the element it names.
export function wireCopyButtons(root, labels) {
  root.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-copy], button[data-copy-text]');
    if (!button) return;
    // data-copy-text: the whole value of a shortened one; data-copy: the
    // id of the element whose text is copied.
    if (button.dataset.copyText) {
      copyText(button, button.dataset.copyText, labels);
      return;
    }
    const target = document.getElementById(button.dataset.copy);
    if (target) copyText(button, target.textContent.trim(), labels);
  });
}

// formatTime shows Unix milliseconds in the user's locale.
export function formatTime(ms) {
  if (ms === null || ms === undefined) return t('common.none');
  return new Date(ms).toLocaleString(document.documentElement.lang || undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

// shorten keeps the head and tail of a long id or address, which is what
// people compare (web/checkout.go's shorten does the same on the server).
export function shorten(s) {
  s = String(s || '');
  return s.length <= 20 ? s : s.slice(0, 10) + '…' + s.slice(-8);
}

// The language switch keeps the dashboard's view (the URL fragment).
for (const a of document.querySelectorAll('.langs a[data-lang]')) {
  a.addEventListener('click', () => { a.hash = location.hash; });
}
