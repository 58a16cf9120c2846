// Every user-facing string comes from one catalogue per language (i18n/<code>.json); adding a language
// is adding a file and a line in i18n/languages.json, no code. English is the fallback for a missing key.
const BASE = new URL('../i18n/', import.meta.url);
const STORAGE_KEY = 'homecoming.field.lang';  // the language choice only: not personal data
let strings = {};
let fallback = {};
let current = 'en';
let languages = {};

async function fetchJson(name) {
  const response = await fetch(new URL(name, BASE));
  if (!response.ok) throw new Error(`catalogue ${name}: ${response.status}`);
  return response.json();
}

export async function loadLanguages() {
  languages = await fetchJson('languages.json');
  return languages;
}

export function availableLanguages() {
  return languages;
}

function preferred() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && languages[saved]) return saved;
  for (const tag of navigator.languages || [navigator.language]) {
    const code = String(tag).toLowerCase().split('-')[0];
    if (languages[code]) return code;
  }
  return 'en';
}

export async function setLanguage(code = preferred()) {
  if (!languages[code]) code = 'en';
  if (!Object.keys(fallback).length) fallback = await fetchJson('en.json');
  strings = code === 'en' ? fallback : await fetchJson(`${code}.json`);
  current = code;
  localStorage.setItem(STORAGE_KEY, code);
  document.documentElement.lang = code;
  document.documentElement.dir = languages[code].dir || 'ltr';
  return code;
}

export function language() {
  return current;
}

// t('day.due_on', {date: '…'}): "{days}" placeholders are filled; a key with ".one"/".other"
// variants picks one with Intl.PluralRules when the params hold a "count".
export function t(key, params = {}) {
  let chosen = key;
  if ('count' in params) {
    const form = new Intl.PluralRules(current).select(params.count);
    chosen = `${key}.${form}` in strings || `${key}.${form}` in fallback ? `${key}.${form}` : `${key}.other`;
  }
  let text = strings[chosen] ?? fallback[chosen];
  if (text == null) return key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

export function has(key) {
  return key in strings || key in fallback;
}

// A controlled-vocabulary value ("with_armed_group") in the user's language; unknown values are shown
// as they are rather than hidden.
export function term(list, value) {
  if (value == null || value === '') return '';
  const key = `vocab.${list}.${value}`;
  return has(key) ? t(key) : String(value).replaceAll('_', ' ');
}

// Dates in the phone's own format (its locale, not the app language), as the issue asks.
const dateFormat = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium'});
const timeFormat = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'});

export function formatDate(iso) {
  if (!iso) return '';
  const [y, m, d] = String(iso).slice(0, 10).split('-').map(Number);
  if (!y || !m || !d) return String(iso);
  return dateFormat.format(new Date(y, m - 1, d));
}

export function formatDateTime(iso) {
  if (!iso) return '';
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso) : timeFormat.format(when);
}
