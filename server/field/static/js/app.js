// The field app's shell: lock gate, hash routing (#/today, #/children, #/child/<id> ...; a reload keeps
// the view), header with language switch and lock, the tab bar, the sync bar and flash messages.
// Views are functions returning a DOM node whose <h1> takes focus after each change of view.
import * as engine from './engine.js';
import {availableLanguages, language, loadLanguages, setLanguage, t} from './i18n.js';
import {h} from './ui/dom.js';
import {enrolView, unlockView} from './ui/lock.js';
import {dayView} from './ui/day.js';
import {caseloadView, forgetSearch} from './ui/caseload.js';
import {childView} from './ui/child.js';
import {assessmentView, childFormView, serviceView, stageView, visitView} from './ui/edit.js';
import {referralView} from './ui/referrals.js';
import {requestFormView, requestView, traceView, tracingListView} from './ui/tracing.js';
import {syncBar} from './ui/syncbar.js';
import {errorText} from './ui/words.js';

const SYNC_EVERY_MS = 5 * 60 * 1000;
const ID = '([0-9a-fA-F-]{36})';
const ROUTES = [
  [/^\/today$/, dayView, []],
  [/^\/children$/, caseloadView, []],
  [/^\/register$/, childFormView, []],
  [new RegExp(`^/child/${ID}$`), childView, ['id']],
  [new RegExp(`^/child/${ID}/edit$`), childFormView, ['id']],
  [new RegExp(`^/child/${ID}/visit(?:/${ID})?$`), visitView, ['id', 'record']],
  [new RegExp(`^/child/${ID}/stage(?:/${ID})?$`), stageView, ['id', 'record']],
  [new RegExp(`^/child/${ID}/assessment(?:/${ID})?$`), assessmentView, ['id', 'record']],
  [new RegExp(`^/child/${ID}/service(?:/${ID})?$`), serviceView, ['id', 'record']],
  [new RegExp(`^/child/${ID}/referral$`), referralView, ['id']],
  [/^\/tracing$/, tracingListView, []],
  [/^\/tracing\/new$/, requestFormView, []],
  [new RegExp(`^/tracing/${ID}$`), requestView, ['id']],
  [new RegExp(`^/tracing/${ID}/edit$`), requestFormView, ['id']],
  [new RegExp(`^/tracing/${ID}/trace$`), traceView, ['id']],
];
const TABS = [['#/today', 'nav.today'], ['#/children', 'nav.children'], ['#/register', 'nav.register'],
  ['#/tracing', 'nav.tracing']];
// Safe to redraw after a sync.
const READ_VIEWS = new Set([dayView, caseloadView, childView, tracingListView, requestView]);

const top = document.getElementById('top');
const nav = document.getElementById('nav');
const syncSlot = document.getElementById('sync');
const main = document.getElementById('main');
let flashed = null;  // {text, kind} shown once, at the top of the next view
let rendering = 0;
let currentView = null;

function parse(hash) {
  const [path, search = ''] = (hash || '').replace(/^#/, '').split('?');
  return {path: path || '/today', query: Object.fromEntries(new URLSearchParams(search))};
}

function notFound() {
  return h('div', {}, h('h1', {tabindex: -1}, t('notfound.title')), h('p', {}, t('notfound.text')),
    h('a', {class: 'button secondary', href: '#/today'}, t('nav.today')));
}

const ctx = {
  go(hash) {
    if (location.hash === hash) render(); else location.hash = hash;
  },
  refresh: () => render(),
  flash(text, kind = 'status') { flashed = {text, kind}; },
  notFound,
  unlocked() { render(); bar.run(); },
  syncSoon() { setTimeout(() => bar.run(), 200); },
};

const bar = syncBar((error) => {
  if (error.code === 'revoked' || error.code === 'unauthorized') {
    ctx.flash(errorText(error), 'alert');
    render();
  }
});
syncSlot.append(bar.root);

function paintChrome(unlocked) {
  const label = 'lang';
  const select = h('select', {id: label, onchange: async (event) => {
    await setLanguage(event.target.value);
    await render({moveFocus: false});
    document.getElementById(label)?.focus();  // the header was redrawn in the new language
  }}, Object.entries(availableLanguages()).map(([code, info]) =>
    h('option', {value: code, selected: code === language(), lang: code}, info.name)));
  top.replaceChildren(
    h('p', {class: 'brand'}, t('app.name')),
    h('div', {class: 'top-tools'},
      h('label', {for: label, class: 'visually-hidden'}, t('nav.language')), select,
      unlocked ? h('button', {type: 'button', class: 'secondary small', onclick: () => {
        engine.lock();
        render();
      }}, t('nav.lock')) : null));
  const here = `#${parse(location.hash).path}`;
  nav.setAttribute('aria-label', t('nav.main'));
  nav.replaceChildren(...TABS.map(([href, key]) => h('a', {href, 'aria-current': href === here ? 'page' : null},
    t(key))));
  nav.hidden = !unlocked;
  syncSlot.hidden = !unlocked;
}

// A flash shows at the top of the next view and stays while that view is redrawn (a sync must not
// take the danger message away); moving to another view drops it.
let shown = null;  // {node, path}

function flashNode() {
  const path = location.hash;
  if (flashed) {
    const {text, kind} = flashed;
    flashed = null;
    shown = {path, node: h('div', {class: `flash ${kind}`, role: kind === 'status' ? 'status' : 'alert'}, text)};
  } else if (shown && shown.path !== path) {
    shown = null;
  }
  return shown?.node || null;
}

async function view() {
  const status = await engine.status();
  if (!status.enrolled) return [false, enrolView(ctx), null];
  if (status.locked) return [false, unlockView(ctx), null];
  const {path, query} = parse(location.hash);
  for (const [pattern, make, names] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      const params = Object.fromEntries(names.map((name, i) => [name, match[i + 1]]));
      return [true, await make(ctx, params, query), make];
    }
  }
  return [true, notFound(), null];
}

// A change of view moves focus to its heading; a redraw after a sync leaves focus where it is.
async function render({moveFocus = true} = {}) {
  const mine = ++rendering;
  let unlocked, node, make;
  try {
    [unlocked, node, make] = await view();
  } catch (error) {
    if (error.code === 'locked') return render();
    [unlocked, node, make] = [true, h('div', {}, h('h1', {tabindex: -1}, t('error.title')),
      h('p', {}, errorText(error))), null];
  }
  if (mine !== rendering) return;  // a newer navigation won
  currentView = make;
  const onHeading = document.activeElement?.tagName === 'H1';  // a redraw keeps it there
  paintChrome(unlocked);
  main.replaceChildren(...[flashNode(), node].filter(Boolean));
  const heading = main.querySelector('h1');
  document.title = `${heading?.textContent || ''} · ${t('app.name')}`;
  if (moveFocus || onHeading) heading?.focus();
  if (unlocked) bar.render();
}

async function syncIfOpen() {
  const status = await engine.status();
  if (status.enrolled && !status.locked) bar.run();
}

// The person is working in the view (typing, or on one of its buttons): a sync must not redraw it.
function busyInView() {
  const here = document.activeElement;
  return Boolean(here && main.contains(here) && here !== main && here.tagName !== 'H1');
}

async function start() {
  await loadLanguages();
  await setLanguage();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js', {scope: './'}).catch(() => {});
  }
  engine.onChange(({type}) => {
    if (type === 'locked') { forgetSearch(); render(); }
    // A wipe follows a revoke (whose message stays) or the last wrong PIN (the unlock screen says so).
    if (type === 'wiped') { forgetSearch(); if (!flashed) ctx.flash(t('status.wiped'), 'alert'); render(); }
    if (type === 'revoked') { ctx.flash(t('error.revoked'), 'alert'); render(); }
    if (type === 'synced' || type === 'changed') {
      bar.render();
      if (type === 'synced' && READ_VIEWS.has(currentView) && !busyInView()) render({moveFocus: false});
    }
  });
  // Any sign of a person (tap, key, scroll while reading) keeps the app unlocked; the idle lock counts from the last.
  for (const kind of ['pointerdown', 'keydown', 'scroll', 'input']) {
    document.addEventListener(kind, () => engine.touch(), {passive: true, capture: true});
  }
  window.addEventListener('hashchange', render);
  window.addEventListener('online', syncIfOpen);
  setInterval(syncIfOpen, SYNC_EVERY_MS);
  setInterval(() => bar.render(), 60 * 1000);  // "last sync" and the stale warning age with the clock
  await render();
}

start();
