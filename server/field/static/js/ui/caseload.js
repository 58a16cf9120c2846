// The caseload with search (name, other names, case code, village; done by the engine on decrypted
// data). The search text never goes into the address: a name in the browser history would outlive it.
import * as engine from '../engine.js';
import {h, uid} from './dom.js';
import {t, term} from '../i18n.js';
import {childName} from './words.js';

let lastSearch = '';  // kept in memory only, so coming back to the list keeps it while unlocked

export function forgetSearch() {
  lastSearch = '';
}

function item(child) {
  return h('li', {class: 'card'},
    h('a', {class: 'card-link', href: `#/child/${child.id}`},
      h('span', {class: 'card-title'}, childName(child)),
      h('span', {class: 'code'}, child.case_code || ''),
      h('span', {class: 'meta'}, [term('stage', child.stage), child.village].filter(Boolean).join(' · ')),
      child._pending ? h('span', {class: 'badge'}, t('status.pending_badge')) : null,
      child._messages?.length ? h('span', {class: 'badge warn'}, t('status.needs_attention')) : null));
}

export async function caseloadView() {
  const id = uid('search');
  const input = h('input', {id, type: 'search', autocomplete: 'off', spellcheck: 'false', value: lastSearch});
  const count = h('p', {class: 'meta', role: 'status'});
  const list = h('ul', {class: 'cards'});
  let asked = 0;
  const show = async () => {
    const mine = ++asked;
    lastSearch = input.value;
    const found = lastSearch.trim() ? await engine.search(lastSearch) : await engine.children();
    if (mine !== asked) return;  // a later keystroke already asked again
    list.replaceChildren(...found.map(item));
    count.textContent = t('caseload.count', {count: found.length});
  };
  input.addEventListener('input', show);
  await show();
  return h('div', {},
    h('h1', {tabindex: -1}, t('caseload.title')),
    h('div', {class: 'field'}, h('label', {for: id}, t('caseload.search')), input),
    h('a', {class: 'button secondary', href: '#/register'}, t('caseload.register')),
    count, list);
}
