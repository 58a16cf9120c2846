// The sync status bar: what waits to be sent, when the last sync succeeded, and a warning after
// STALE_DAYS without one. The text sits in an aria-live region; the button stays outside it so a
// screen reader hears the status change, not the button.
import * as engine from '../engine.js';
import {h} from './dom.js';
import {formatDateTime, t} from '../i18n.js';
import {errorText} from './words.js';

export const STALE_DAYS = 3;

export function syncBar(onError) {
  const line = h('p', {class: 'sync-line', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true'});
  const warning = h('p', {class: 'sync-warning', role: 'alert', hidden: true});
  let busy = false;
  let lastProblem = null;
  const button = h('button', {type: 'button', class: 'secondary small'}, t('sync.now'));
  const root = h('div', {class: 'syncbar'}, h('div', {class: 'sync-text'}, line, warning), button);

  async function render() {
    let status;
    try {
      status = await engine.syncStatus();
    } catch {
      return;  // locked: nothing to say until unlocked
    }
    const parts = [busy ? t('sync.running')
      : status.pending ? t('sync.pending', {count: status.pending}) : t('sync.all_sent')];
    if (status.failed) parts.push(t('sync.failed', {count: status.failed}));
    if (status.conflicts) parts.push(t('sync.conflicts', {count: status.conflicts}));
    parts.push(status.lastSyncOkAt ? t('sync.last_ok', {when: formatDateTime(status.lastSyncOkAt)}) : t('sync.never'));
    if (lastProblem) parts.push(lastProblem.code === 'offline' ? t('sync.offline') : errorText(lastProblem));
    line.textContent = parts.join(' · ');
    const stale = status.lastSyncOkAt ? status.staleDays >= STALE_DAYS : false;
    warning.hidden = !stale;
    warning.textContent = stale ? t('sync.stale', {count: status.staleDays}) : '';
    root.classList.toggle('stale', stale);
    button.textContent = t('sync.now');
  }

  let again = false;  // a run asked for while one was under way (a save): done once it ends

  async function run() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    button.disabled = true;
    await render();
    try {
      await engine.sync();
      lastProblem = null;
    } catch (error) {
      lastProblem = error;  // put in words at each render, in the language of the moment
      onError?.(error);
    } finally {
      busy = false;
      button.disabled = false;
      await render();
    }
    // A change saved once that sync had pushed (while it pulled) went unsent: send it now, not at the
    // next timer. After a failure (offline) the next timer or the button tries again, not a loop here.
    if (again) {
      again = false;
      if (!lastProblem) await run();
    }
  }

  button.addEventListener('click', run);
  return {root, render, run};
}
