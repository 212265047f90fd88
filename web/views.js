// The page's side of the interface the engine (Python, in the engine worker) drives.
//
// This module owns: applying the engine's interface operations to the document — a transfer's
// view cloned from its <template>, its parts' texts (catalog messages painted by i18n.js), shown
// and hidden parts, properties, the offer's file list, a link's receiver rows, the home screen's
// link options — and sending back what the person does there (a click, a submitted form) as
// events. Python decides what is shown; this file only shows it. See hushdrop/page/ui.py.

import * as i18n from "./i18n.js";

const { t } = i18n;
const $ = (id) => document.getElementById(id);

// Parts that ask the person to act while a transfer runs; hidden when it ends (ui.py).
const ENDED_PROMPTS = ["share", "password-form", "offer", "close-link"];
const RUNNING_KEY = "hushdrop-running"; // app.js INTERRUPTED_KEY

const home = $("home");
const views = new Map(); // id → {root, parts, listeners}
let current = null;
let sendEvent = () => {};

function paint(element, message) {
  if (message) i18n.setText(element, message.key, message.args || {});
  else i18n.setPlainText(element, "");
}

function plain(element, text) {
  element.removeAttribute("data-i18n");
  element.removeAttribute("data-i18n-args");
  element.textContent = text;
}

function announce(text) {
  $("announcer").textContent = text;
}

function showHome() {
  const view = $("view");
  view.replaceChildren();
  if (!home.isConnected) view.before(home);
  home.hidden = false; // app.js hides it while a link is being opened
  i18n.setTitle("title.home");
}

function release(view) {
  for (const [element, event, listener] of view.listeners) {
    element.removeEventListener(event, listener);
  }
  view.listeners = [];
}

function listen(view, element, event, listener) {
  view.listeners.push([element, event, listener]);
  element.addEventListener(event, listener);
}

function createView(id, template) {
  if (current) release(current);
  const root = $(template).content.firstElementChild.cloneNode(true);
  const parts = {};
  for (const element of root.querySelectorAll("[data-part]")) parts[element.dataset.part] = element;
  current = { id, root, parts, listeners: [] };
  views.set(id, current);
  home.remove();
  $("view").replaceChildren(root);
  window.scrollTo(0, 0);
  // Focus moves into the new view, so keyboard and screen-reader users land where things are.
  parts.title.focus();
}

// Focus that was inside a part now hidden (or on a button just disabled, which browsers send
// back to <body>) goes to the view's heading, not the top of the page.
function keepFocus(view) {
  const active = document.activeElement;
  if (!active || active === document.body || !active.getClientRects().length) {
    view.parts.title.focus();
  }
}

function endView(view) {
  const { parts } = view;
  for (const name of ["cancel", ...ENDED_PROMPTS]) if (parts[name]) parts[name].hidden = true;
  keepFocus(view);
  parts.again.hidden = false;
  // The status line and the alert announce themselves; this adds what they do not say: the
  // heading's outcome, or the details of a completed transfer.
  const done = parts.done;
  if (!done.hidden && done.textContent) {
    announce(t("announce.complete", { details: done.textContent }));
  } else {
    announce(t("announce.ended", { heading: parts.title.textContent }));
  }
  listen(view, parts.again, "click", () => {
    release(view);
    views.delete(view.id);
    plain($("alert"), "");
    showHome();
    $("send-title").focus(); // the button clicked is gone
  });
}

function offerList(view, rows, more) {
  const items = view.parts["offer-list"];
  for (const [name, size] of rows) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "file-name";
    label.textContent = name;
    label.title = name;
    const sizeText = document.createElement("span");
    sizeText.className = "file-size";
    paint(sizeText, size);
    item.append(label, sizeText);
    items.append(item);
  }
  if (more) {
    const item = document.createElement("li");
    item.className = "more";
    paint(item, more);
    items.append(item);
  }
}

// One receiver's row in a link sender's list: name, verification code, state and progress.
function receiverRow(view, number, name, sasLabel, barLabel) {
  const item = document.createElement("li");
  item.className = "receiver-row";
  item.dataset.receiver = String(number);
  const head = document.createElement("div");
  head.className = "receiver-head";
  const nameText = document.createElement("span");
  nameText.className = "receiver-name";
  paint(nameText, name);
  const sas = document.createElement("output");
  sas.className = "sas";
  i18n.setAttributes(sas, { "aria-label": sasLabel.key }, sasLabel.args);
  head.append(nameText, sas);
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  i18n.setAttributes(bar, { "aria-label": barLabel.key }, barLabel.args);
  const state = document.createElement("p");
  state.className = "receiver-state";
  item.append(head, bar, state);
  view.parts["receiver-list"].appendChild(item);
}

function renderReceiver(view, op) {
  const item = view.parts["receiver-list"].querySelector(`[data-receiver="${op.number}"]`);
  if (!item) return;
  item.querySelector(".sas").textContent = op.sas;
  const bar = item.querySelector("progress");
  if (op.bar) {
    bar.max = op.bar.max;
    bar.value = op.bar.value;
  }
  if (op.valuetext) {
    i18n.setAttributes(bar, { "aria-valuetext": op.valuetext.key }, op.valuetext.args);
  }
  paint(item.querySelector(".receiver-state"), op.state);
}

// The lifetimes the relay allows, its default chosen; and at most its receivers.
function linkOptions(op) {
  const expiry = home.querySelector("#send-expiry");
  expiry.replaceChildren();
  for (const [seconds, label] of op.lifetimes) {
    const option = document.createElement("option");
    option.value = String(seconds);
    paint(option, label);
    option.selected = seconds === op.default;
    expiry.appendChild(option);
  }
  const receivers = home.querySelector("#send-receivers");
  for (const option of [...receivers.options]) {
    if (Number(option.value) > op.receivers) option.remove();
  }
}

const OPERATIONS = {
  view: (op) => createView(op.view, op.template),
  text: (op, view) => paint(view.parts[op.part], op.message),
  plain: (op, view) => plain(view.parts[op.part], op.value),
  show: (op, view) => {
    for (const name of op.parts) view.parts[name].hidden = false;
  },
  hide: (op, view) => {
    for (const name of op.parts) view.parts[name].hidden = true;
    keepFocus(view);
  },
  set: (op, view) => {
    view.parts[op.part][op.property] = op.value;
  },
  data: (op, view) => {
    view.parts[op.part].dataset[op.name] = op.value;
  },
  call: (op, view) => view.parts[op.part][op.method](...(op.args || [])),
  listen: (op, view) => {
    const element = view.parts[op.part];
    const read = op.read ? view.parts[op.read] : null;
    listen(view, element, op.event, () => {
      sendEvent({ kind: "event", handler: op.handler, value: read ? read.value : null });
    });
  },
  end: (op, view) => endView(view),
  release: (op, view) => release(view),
  "offer-list": (op, view) => offerList(view, op.rows, op.more),
  "receiver-row": (op, view) => receiverRow(view, op.number, op.name, op.sas, op.bar),
  "receiver-render": (op, view) => renderReceiver(view, op),
  // Not a view's:
  alert: (op) => paint($("alert"), op.message),
  title: (op) => i18n.setTitle(op.message.key, op.message.args || {}),
  announce: (op) => announce(t(op.message.key, op.message.args || {})),
  busy: (op) => globalThis.hushdrop.setBusy(op.value),
  home: () => showHome(),
  "home-field": (op) => {
    const field = home.querySelector(`#${op.id}`);
    field[op.property] = op.value;
    if (op.input) field.dispatchEvent(new Event("input")); // app.js follows the text box
  },
  "link-options": (op) => linkOptions(op),
  "clear-selection": () => globalThis.hushdrop.clearSelection(),
  // Said on the next load if this tab is reloaded or left mid-way (app.js).
  running: (op) => {
    if (op.message) sessionStorage.setItem(RUNNING_KEY, JSON.stringify(op.message));
    else sessionStorage.removeItem(RUNNING_KEY);
  },
};

// Apply one operation (JSON) from the engine.
export function apply(operation) {
  const op = JSON.parse(operation);
  const view = op.view === undefined ? null : views.get(op.view);
  if (op.view !== undefined && op.op !== "view" && !view) return; // a view already gone
  OPERATIONS[op.op](op, view);
}

// Where the person's actions go (to the engine).
export function onEvent(send) {
  sendEvent = send;
}
