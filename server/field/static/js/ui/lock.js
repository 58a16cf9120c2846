// The two screens before any data: enrol this phone (paste or scan the manager's QR code, choose a
// PIN), and unlock it with the PIN.
import * as engine from '../engine.js';
import {h} from './dom.js';
import {t} from '../i18n.js';
import {area, form, text} from './controls.js';
import {errorText} from './words.js';

// Scanning uses the browser's own BarcodeDetector (Chrome on Android has it); no library. Where it is
// missing the button is not shown and pasting is the way.
function scanner(target) {
  if (!('BarcodeDetector' in window) || !navigator.mediaDevices?.getUserMedia) return null;
  const video = h('video', {class: 'scanner', playsinline: true, muted: true, hidden: true,
    'aria-label': t('enrol.camera')});
  const status = h('p', {class: 'hint', role: 'status'});
  let stream = null;
  const stop = () => {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = true;
  };
  const button = h('button', {type: 'button', class: 'secondary', onclick: async () => {
    if (stream) { stop(); return; }
    try {
      const detector = new window.BarcodeDetector({formats: ['qr_code']});
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment'}});
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      status.textContent = t('enrol.scanning');
      const look = async () => {
        if (!stream) return;
        const codes = await detector.detect(video).catch(() => []);
        if (codes.length) {
          target.value = codes[0].rawValue;
          status.textContent = t('enrol.scanned');
          stop();
          target.focus();
        } else {
          requestAnimationFrame(look);
        }
      };
      look();
    } catch {
      stop();
      status.textContent = t('enrol.no_camera');
    }
  }}, t('enrol.scan'));
  return h('div', {class: 'scan'}, button, video, status);
}

export function enrolView(ctx) {
  const code = area('code', t('enrol.code'), {hint: t('enrol.code_hint')});
  code.input.setAttribute('autocomplete', 'off');
  code.input.setAttribute('spellcheck', 'false');
  const pin = text('pin', t('enrol.pin'), {type: 'password', hint: t('enrol.pin_hint'),
    autocomplete: 'new-password', inputmode: 'numeric'});
  const again = text('pin2', t('enrol.pin_again'), {type: 'password', autocomplete: 'new-password',
    inputmode: 'numeric'});
  const theForm = form([code, pin, again], t('enrol.submit'), async ({code: payload, pin: p, pin2}) => {
    if (!payload) return {code: [t('enrol.code_missing')]};
    if (p !== pin2) return {pin2: [t('enrol.pin_mismatch')]};
    try {
      await engine.enrol(payload, p || '');
    } catch (error) {
      const where = {weak_pin: 'pin'}[error.code] || 'code';
      return {[where]: [errorText(error)]};
    }
    ctx.flash(t('enrol.done'));
    if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/today');
    ctx.unlocked();
    return null;
  });
  theForm.insertBefore(scanner(code.input) || h('span'), theForm.querySelector('.field'));
  return h('section', {class: 'lock'},
    h('h1', {tabindex: -1}, t('enrol.title')),
    h('p', {}, t('enrol.intro')),
    theForm);
}

export function unlockView(ctx) {
  const pin = text('pin', t('unlock.pin'), {type: 'password', autocomplete: 'current-password',
    inputmode: 'numeric'});
  const theForm = form([pin], t('unlock.submit'), async ({pin: p}) => {
    try {
      await engine.unlock(p || '');
    } catch (error) {
      if (error.code === 'wiped') {
        ctx.flash(t('error.wiped'), 'alert');
        ctx.refresh();
        return null;
      }
      pin.input.value = '';
      return {pin: [errorText(error)]};
    }
    ctx.unlocked();
    return null;
  });
  return h('section', {class: 'lock'},
    h('h1', {tabindex: -1}, t('unlock.title')),
    h('p', {}, t('unlock.intro')),
    theForm);
}
