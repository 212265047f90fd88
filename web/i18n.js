// Hushdrop page languages: the catalogs, the choice of language, and every visible text.
//
// This module owns: which language the page speaks (the person's choice, kept in localStorage,
// else the best match of navigator.languages, else English); loading that language's catalog
// (web/locales/<code>.json, one per language, shared with the Python page code); formatting
// messages with their arguments (numbers, sizes, speeds, durations and percentages through Intl,
// plural forms through Intl.PluralRules); and painting them into the page.
//
// A translated element keeps its message, not only its text: `data-i18n` holds the key (and
// `data-i18n-args` the arguments, as JSON) for its text, `data-i18n-attr` "attribute:key …" for
// its attributes. So changing the language repaints everything in place — the home screen, a
// running transfer's view, the templates views are cloned from — and nothing is lost.
//
// Message arguments are plain strings, numbers (formatted as counts), or typed values:
//   {"$size": bytes (null: unknown)}  {"$rate": bytes per second}  {"$duration": seconds}
//   {"$percent": 0…1}  {"$period": [amount, "day"]} (one unit, spelt out: "10 minutes")
//   {"$message": key, "args": {...}}  (a message inside a message)
// A message whose catalog entry is an object ({"one": …, "few": …, "many": …, "other": …})
// is chosen by the plural category of its `count` argument.

// The build (build_site.py) rewrites these names to the content-hashed ones it writes.
const CATALOG_FILES = {
  en: "locales/en.json",
  de: "locales/de.json",
  uk: "locales/uk.json",
  fr: "locales/fr.json",
  es: "locales/es.json",
};
// Each language in its own name: found by those who read it, whatever the page speaks now.
export const LANGUAGES = [
  { code: "en", name: "English" }, // i18n: name
  { code: "de", name: "Deutsch" }, // i18n: name
  { code: "uk", name: "Українська" }, // i18n: name
  { code: "fr", name: "Français" }, // i18n: name
  { code: "es", name: "Español" }, // i18n: name
];
const FALLBACK = "en";
const RTL = new Set(["ar", "fa", "he", "ur"]); // none shipped yet; `dir` follows when one is
const STORAGE_KEY = "hushdrop-language";

// Binary units, as the command line shows sizes: Intl has no IEC units (kibibyte…), so the
// number is formatted by Intl and the unit symbol comes from the catalog.
const SIZE_UNITS = ["unit.b", "unit.kib", "unit.mib", "unit.gib", "unit.tib"];

const state = {
  code: null, // the language shown
  messages: null, // its catalog
  title: null, // {key, args} of document.title
  roots: new Set(), // detached trees to repaint too (the home screen while a view shows)
  listeners: [],
  formats: new Map(),
};

function storedChoice() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage refused (some privacy settings): the browser's languages decide
  }
}

// The best of our languages for the browser's list (`de-DE` → de), in the person's order.
export function bestLanguage(preferred) {
  const codes = LANGUAGES.map((language) => language.code);
  for (const tag of preferred || []) {
    const lower = String(tag).toLowerCase();
    if (codes.includes(lower)) return lower;
    const primary = lower.split("-")[0];
    if (codes.includes(primary)) return primary;
  }
  return FALLBACK;
}

function initialLanguage() {
  const stored = storedChoice();
  if (stored && stored in CATALOG_FILES) return stored;
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language];
  return bestLanguage(preferred);
}

async function fetchCatalog(code) {
  const response = await fetch(CATALOG_FILES[code]);
  if (!response.ok) throw new Error(`${CATALOG_FILES[code]}: HTTP ${response.status}`);
  return response.json();
}

function cached(kind, options) {
  const id = `${state.code}|${kind}|${JSON.stringify(options)}`;
  if (!state.formats.has(id)) state.formats.set(id, new Intl[kind](state.code, options));
  return state.formats.get(id);
}

export function formatNumber(value, options = {}) {
  return cached("NumberFormat", options).format(value);
}

function lookup(key) {
  const messages = state.messages || {};
  if (key in messages) return messages[key];
  console.warn(`Hushdrop: no message "${key}" in ${state.code}`);
  return key;
}

function fill(template, args) {
  return template.replace(/\{([a-zA-Z0-9_]+)\}/g, (whole, name) =>
    name in args ? formatValue(args[name]) : whole,
  );
}

export function t(key, args = {}) {
  let template = lookup(key);
  if (typeof template === "object" && template !== null) {
    const count = typeof args.count === "number" ? args.count : 0;
    const category = cached("PluralRules", {}).select(count);
    template = template[category] ?? template.other;
  }
  return fill(String(template), args);
}

export function formatSize(bytes) {
  let value = Math.max(0, Number(bytes) || 0);
  let unit = 0;
  while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 ? 0 : 1;
  const number = formatNumber(value, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return t(SIZE_UNITS[unit], { value: number });
}

// Durations as people say them roughly: `3.2 s`, `48 s`, `2 min 5 s`, `1 h 4 min`.
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 9.95) {
    return formatNumber(seconds, {
      style: "unit",
      unit: "second",
      unitDisplay: "short",
      minimumFractionDigits: 1,
      maximumFractionDigits: 1,
    });
  }
  const rounded = Math.round(seconds);
  const hours = Math.floor(rounded / 3600);
  const minutes = Math.floor((rounded % 3600) / 60);
  const secs = rounded % 60;
  // Two units at most, the smaller one left out when it is zero: `1 h`, `2 min 5 s`.
  const parts = hours ? { hours } : minutes ? { minutes } : { seconds: secs };
  if (hours && minutes) parts.minutes = minutes;
  if (!hours && minutes && secs) parts.seconds = secs;
  if (typeof Intl.DurationFormat === "function") {
    return cached("DurationFormat", { style: "short" }).format(parts);
  }
  // Without DurationFormat (older engines): each unit by NumberFormat, joined by a space.
  const units = { hours: "hour", minutes: "minute", seconds: "second" };
  return Object.entries(parts)
    .map(([name, value]) =>
      formatNumber(value, { style: "unit", unit: units[name], unitDisplay: "short" }),
    )
    .join(" ");
}

export function formatValue(value) {
  if (typeof value === "number") return formatNumber(value);
  if (value === null || typeof value !== "object") return String(value ?? "");
  if ("$size" in value) {
    return value.$size === null ? t("files.size-unknown") : formatSize(value.$size);
  }
  if ("$rate" in value) return t("unit.per-second", { size: formatSize(value.$rate) });
  if ("$duration" in value) return formatDuration(value.$duration);
  if ("$period" in value) {
    const [amount, unit] = value.$period;
    return formatNumber(amount, { style: "unit", unit, unitDisplay: "long" });
  }
  if ("$percent" in value) {
    return formatNumber(value.$percent, { style: "percent", maximumFractionDigits: 0 });
  }
  if ("$message" in value) return t(value.$message, value.args || {});
  return String(value);
}

// ------------------------------------------------------------------------- painting

function argsOf(element) {
  const json = element.dataset.i18nArgs;
  if (!json) return {};
  try {
    return JSON.parse(json);
  } catch {
    return {};
  }
}

function paint(element) {
  if (!state.messages) return;
  const args = argsOf(element);
  if (element.dataset.i18n) element.textContent = t(element.dataset.i18n, args);
  if (element.dataset.i18nAttr) {
    for (const pair of element.dataset.i18nAttr.trim().split(/\s+/)) {
      const [attribute, key] = pair.split(":");
      element.setAttribute(attribute, t(key, args));
    }
  }
}

function paintTree(root) {
  if (root.nodeType === Node.ELEMENT_NODE) paint(root);
  for (const element of root.querySelectorAll("[data-i18n], [data-i18n-attr]")) paint(element);
}

// Give `element` a message for its text: kept on it, painted now and at every language change.
export function setText(element, key, args) {
  element.dataset.i18n = key;
  setArgs(element, args);
  paint(element);
}

// The same for attributes: `attributes` maps an attribute's name to its message key.
export function setAttributes(element, attributes, args) {
  element.dataset.i18nAttr = Object.entries(attributes)
    .map(([attribute, key]) => `${attribute}:${key}`)
    .join(" ");
  setArgs(element, args);
  paint(element);
}

function setArgs(element, args) {
  if (args && Object.keys(args).length) element.dataset.i18nArgs = JSON.stringify(args);
  else delete element.dataset.i18nArgs;
}

// Text that is not a message (a file name, a relay's own words) replaces one.
export function setPlainText(element, text) {
  delete element.dataset.i18n;
  delete element.dataset.i18nArgs;
  element.textContent = text;
}

export function setTitle(key, args) {
  state.title = { key, args: args || {} };
  if (state.messages) document.title = t(key, args || {});
}

// A tree that leaves the document for a while (the home screen) is repainted too.
export function keep(root) {
  state.roots.add(root);
}

export function onChange(listener) {
  state.listeners.push(listener);
}

export function language() {
  return state.code;
}

function paintAll() {
  const html = document.documentElement;
  html.lang = state.code;
  html.dir = RTL.has(state.code) ? "rtl" : "ltr";
  paintTree(document.documentElement);
  for (const template of document.querySelectorAll("template")) paintTree(template.content);
  for (const root of state.roots) if (!root.isConnected) paintTree(root);
  if (state.title) document.title = t(state.title.key, state.title.args);
  for (const listener of state.listeners) listener(state.code);
}

// Switch to `code` (a person's choice is remembered) and repaint the page in place.
export async function useLanguage(code, { remember = true } = {}) {
  if (!(code in CATALOG_FILES)) code = FALLBACK;
  const messages = await fetchCatalog(code);
  state.code = code;
  state.messages = messages;
  state.formats.clear();
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // not kept (storage refused), but shown
    }
  }
  paintAll();
}

// The page's catalog, for the engine worker, which formats what Python says to a peer.
export function catalog() {
  return state.messages;
}

// In the engine worker: the page's language and catalog, as the page sends them (nothing to
// paint there).
export function useCatalog(code, messages) {
  state.code = code;
  state.messages = messages;
  state.formats.clear();
}

// The first language: the remembered one, else the browser's. English if its catalog fails.
export async function start() {
  const code = initialLanguage();
  try {
    await useLanguage(code, { remember: false });
  } catch (error) {
    console.warn(`Hushdrop: the ${code} catalog did not load:`, error);
    if (code !== FALLBACK) await useLanguage(FALLBACK, { remember: false });
  }
}
