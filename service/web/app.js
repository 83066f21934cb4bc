// The translation page: plain JavaScript against the server's own API, nothing from other hosts.
"use strict";

const $ = (id) => document.getElementById(id);
const AUTO = "auto";
const TYPING_PAUSE_MS = 400;

const page = {
  settings: { charLimit: 5000, keyRequired: false, beamSize: 5, maxBeamSize: 8, fileCharLimit: 0,
              supportedFilesFormat: [".txt", ".srt", ".html", ".htm", ".xhtml", ".po", ".pot", ".xliff", ".xlf", ".docx", ".pptx", ".odt", ".odp", ".epub"] },
  languages: [],          // [{code, name, targets}] from /languages
  models: [],             // /v1/models
  names: {},              // code -> name
  detected: null,         // language /detect or source=auto found for the current text
  request: null,          // AbortController of the translation in flight
  timer: null,
  seq: 0,
};

class ApiFailure extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

// The error a user can act on, in words, from an HTTP status and the server's {"error": ...}.
function explain(status, message, retryAfter) {
  const wait = retryAfter ? ` Try again in ${retryAfter} s.` : " Try again shortly.";
  switch (status) {
    case 401: showKeyBox(); return "This server needs an API key: enter it in the API key field below.";
    case 403: showKeyBox(); return "The API key was not accepted. Check it in the API key field below.";
    case 413: return `Too large for this server: ${message}`;
    case 429: return `Too many requests.${wait}`;
    case 503: return `The server is busy or starting (${message}).${wait}`;
    case 504: return "The translation took longer than the server allows. Try a shorter text.";
    default:
      if (status >= 500) return `The server failed (${status}): ${message}`;
      return message || `The request was refused (${status}).`;
  }
}

async function api(path, { body, signal, method } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: method || (body === undefined ? "GET" : "POST"),
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiFailure("Cannot reach the translation server. Is it running?", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const message = data && typeof data.error === "string" ? data.error : response.statusText;
    throw new ApiFailure(explain(response.status, message, response.headers.get("Retry-After")), response.status);
  }
  return data;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function showKeyBox() {
  $("key-box").hidden = false;
}

function languageName(code) {
  return page.names[code] || code;
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

function targetsOf(source) {
  if (source === AUTO) {
    const all = new Set();
    page.languages.forEach((l) => l.targets.forEach((t) => all.add(t)));
    return [...all].sort();
  }
  const found = page.languages.find((l) => l.code === source);
  return found ? found.targets : [];
}

function fillTargets(preferred) {
  const select = $("target");
  const keep = preferred || select.value;
  const targets = targetsOf($("source").value);
  select.replaceChildren(...targets.map((t) => option(t, languageName(t))));
  if (targets.includes(keep)) select.value = keep;
}

function fillLanguages(preferredSource, preferredTarget) {
  const source = $("source");
  source.replaceChildren(option(AUTO, "Detect language"),
    ...page.languages.map((l) => option(l.code, l.name)));
  const codes = page.languages.map((l) => l.code);
  source.value = codes.includes(preferredSource) ? preferredSource : (codes[0] || AUTO);
  fillTargets(preferredTarget);
}

function updateCounter() {
  const n = $("source-text").value.length;
  const counter = $("char-count");
  counter.textContent = `${n.toLocaleString()} / ${page.settings.charLimit.toLocaleString()} characters`;
  counter.classList.toggle("over", n > page.settings.charLimit);
}

function setBusy(busy) {
  $("busy").textContent = busy ? "Translating…" : "";
}

function scheduleTranslate() {
  clearTimeout(page.timer);
  page.timer = setTimeout(translate, TYPING_PAUSE_MS);
}

async function translate() {
  clearTimeout(page.timer);
  const text = $("source-text").value;
  const seq = ++page.seq;
  if (page.request) page.request.abort();
  page.request = null;
  if (!text.trim()) {
    $("target-text").value = "";
    $("detected").textContent = "";
    renderAlternatives([]);
    renderHeatmaps([]);
    showError("");
    setBusy(false);
    return;
  }
  if (text.length > page.settings.charLimit) {
    showError(`The text has ${text.length.toLocaleString()} characters; this server translates at most ` +
      `${page.settings.charLimit.toLocaleString()} at a time. Shorten it, or translate it as a file.`);
    return;
  }
  const beam = Number($("beam").value);
  const nBest = Math.min(Number($("alternatives").value) + 1, beam);
  const controller = new AbortController();
  page.request = controller;
  setBusy(true);
  try {
    const data = await api("/v1/translate", {
      body: {
        texts: [text], source: $("source").value, target: $("target").value, beam_size: beam,
        n_best: nBest, return_alignments: true,
      },
      signal: controller.signal,
    });
    if (seq !== page.seq) return;
    const result = data.translations[0];
    $("target-text").value = result.text;
    if (result.detected_language) {
      page.detected = result.detected_language.language;
      $("detected").textContent = `Detected: ${languageName(page.detected)} ` +
        `(${Math.round(result.detected_language.confidence)}%)`;
    } else {
      page.detected = null;
      $("detected").textContent = "";
    }
    renderAlternatives((result.alternatives || []).map((a) => a.text));
    renderHeatmaps(result.alignment || [], data.model.includes("+"));
    showError("");
  } catch (err) {
    if (err.name === "AbortError" || seq !== page.seq) return;
    showError(err.message);
  } finally {
    if (seq === page.seq) setBusy(false);
  }
}

function renderAlternatives(texts) {
  const list = $("alternatives-list");
  list.replaceChildren(...texts.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
  $("alternatives-box").hidden = texts.length === 0;
}

// One table per sentence: a row per target piece, a column per source piece, shaded by weight.
function renderHeatmaps(alignments, pivoted) {
  const box = $("heatmaps");
  if (pivoted) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "Translated through a pivot language: the attention of two models does not combine " +
      "into one map.";
    box.replaceChildren(p);
    return;
  }
  box.replaceChildren(...alignments.map((a, i) => heatmap(a, i, alignments.length)));
}

function heatmap(alignment, index, count) {
  const table = document.createElement("table");
  table.className = "heatmap";
  const caption = document.createElement("caption");
  caption.textContent = count > 1 ? `Sentence ${index + 1}` : "Attention weights";
  table.append(caption);
  const head = document.createElement("tr");
  const corner = document.createElement("th");
  corner.textContent = "target ↓ / source →";
  corner.className = "corner";
  head.append(corner);
  alignment.source_tokens.forEach((piece, s) => head.append(pieceHeader(piece, "col", s)));
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  alignment.target_tokens.forEach((piece, t) => {
    const row = document.createElement("tr");
    row.append(pieceHeader(piece, "row", t));
    (alignment.weights[t] || []).forEach((w, s) => {
      const td = document.createElement("td");
      td.dataset.row = String(t);
      td.dataset.col = String(s);
      td.style.setProperty("--w", w.toFixed(3));
      td.title = `${piece} → ${alignment.source_tokens[s]}: ${w.toFixed(2)}`;
      row.append(td);
    });
    tbody.append(row);
  });
  table.append(thead, tbody);
  const light = (event) => highlight(table, alignment, event.target.closest("th, td"));
  table.addEventListener("mouseover", light);
  table.addEventListener("focusin", light);
  table.addEventListener("mouseleave", () => highlight(table, alignment, null));
  table.addEventListener("focusout", () => highlight(table, alignment, null));
  return table;
}

// A focusable header cell for a source piece (a column) or a target piece (a row).
function pieceHeader(piece, scope, index) {
  const th = document.createElement("th");
  th.scope = scope;
  th.className = scope === "col" ? "src" : "tgt";
  th.dataset[scope] = String(index);
  th.tabIndex = 0;
  th.textContent = piece;
  return th;
}

// Pointing at a target piece (its row) lights the source pieces it attended to, by weight;
// pointing at a source piece (its column) lights the target pieces that attended to it.
function highlight(table, alignment, cell) {
  table.querySelectorAll(".lit, .active").forEach((el) => {
    el.classList.remove("lit", "active");
    el.style.removeProperty("--hl");
  });
  if (!cell || cell.classList.contains("corner")) return;
  const src = [...table.querySelectorAll("th.src")];
  const tgt = [...table.querySelectorAll("th.tgt")];
  if (cell.dataset.row !== undefined) {
    const t = Number(cell.dataset.row);
    tgt[t].classList.add("active");
    table.querySelectorAll(`td[data-row="${t}"]`).forEach((td) => td.classList.add("active"));
    (alignment.weights[t] || []).forEach((w, s) => light(src[s], w));
  } else if (cell.dataset.col !== undefined) {
    const s = Number(cell.dataset.col);
    src[s].classList.add("active");
    table.querySelectorAll(`td[data-col="${s}"]`).forEach((td) => td.classList.add("active"));
    alignment.weights.forEach((row, t) => light(tgt[t], row[s]));
  }
}

function light(el, weight) {
  if (!el || weight < 0.05) return;
  el.classList.add("lit");
  el.style.setProperty("--hl", weight.toFixed(3));
}

function swap() {
  let source = $("source").value;
  const target = $("target").value;
  if (source === AUTO) {
    if (!page.detected) {
      showError("Pick the source language (or type some text to detect it) before swapping.");
      return;
    }
    source = page.detected;
  }
  if (!targetsOf(target).includes(source)) {
    showError(`${languageName(target)} to ${languageName(source)} is not available on this server.`);
    return;
  }
  const translation = $("target-text").value;
  $("source").value = target;
  fillTargets(source);
  summarise();
  $("source-text").value = translation;
  $("target-text").value = "";
  updateCounter();
  translate();
}

async function copyTranslation() {
  const text = $("target-text").value;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    $("target-text").select();
    document.execCommand("copy");
  }
  $("busy").textContent = "Copied.";
}

// ----- files -----------------------------------------------------------------------------

function fileProgress(done, total) {
  const bar = $("file-progress");
  bar.hidden = false;
  bar.max = Math.max(total, 1);
  bar.value = done;
}

function translateFile(event) {
  event.preventDefault();
  const file = $("file").files[0];
  const status = $("file-status");
  const link = $("file-download");
  link.hidden = true;
  if (!file) {
    status.textContent = "Choose a file first.";
    return;
  }
  const suffix = file.name.includes(".") ? file.name.slice(file.name.lastIndexOf(".")).toLowerCase() : "";
  if (!page.settings.supportedFilesFormat.includes(suffix)) {
    status.textContent = `${file.name}: only ${page.settings.supportedFilesFormat.join(", ")} files can be translated.`;
    return;
  }
  const progressId = Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0")).join("");
  const form = new FormData();
  form.append("file", file);
  form.append("source", $("source").value);
  form.append("target", $("target").value);
  form.append("progress_id", progressId);
  const key = $("api-key").value.trim();
  if (key) form.append("api_key", key);

  const xhr = new XMLHttpRequest();
  let polling = null;
  const stop = () => clearInterval(polling);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) status.textContent = `Uploading ${Math.round((100 * e.loaded) / e.total)}%…`;
  };
  xhr.upload.onload = () => {
    status.textContent = "Translating…";
    polling = setInterval(async () => {
      try {
        const p = await api(`/translate_file/progress/${progressId}`);
        fileProgress(p.done, p.total);
        status.textContent = `Translating: ${p.done.toLocaleString()} of ${p.total.toLocaleString()} parts…`;
      } catch (_) {
        // not started yet, or finished: the request itself reports the outcome
      }
    }, 300);
  };
  xhr.onerror = () => {
    stop();
    status.textContent = "Cannot reach the translation server.";
  };
  xhr.onload = () => {
    stop();
    let data = null;
    try {
      data = JSON.parse(xhr.responseText);
    } catch (_) {
      data = null;
    }
    if (xhr.status !== 200 || !data || !data.translatedFileUrl) {
      const message = data && data.error ? data.error : xhr.statusText;
      status.textContent = explain(xhr.status, message, xhr.getResponseHeader("Retry-After"));
      return;
    }
    fileProgress(1, 1);
    status.textContent = "Done.";
    link.href = data.translatedFileUrl;
    link.textContent = `Download ${decodeURIComponent(data.translatedFileUrl.split("/").pop().replace(/^[0-9a-f]+\./, ""))}`;
    link.hidden = false;
    link.focus();
  };
  fileProgress(0, 1);
  xhr.open("POST", "/translate_file");
  if (key) xhr.setRequestHeader("X-API-Key", key);
  xhr.send(form);
}

// ----- start-up --------------------------------------------------------------------------

function fillBeams() {
  const beam = $("beam");
  const sizes = [];
  for (let b = 1; b <= page.settings.maxBeamSize; b++) sizes.push(b);
  beam.replaceChildren(...sizes.map((b) => option(String(b), String(b))));
  beam.value = String(page.settings.beamSize);
}

// What the page knows of the chosen pair: the model (or the two of a pivot) and its recorded test BLEU.
function describeModel(m) {
  const bleu = Object.entries(m.metrics || {})
    .filter(([, value]) => value && typeof value === "object" && typeof value.BLEU === "number")
    .map(([name, value]) => `BLEU ${value.BLEU.toFixed(1)} on ${name.replace(/_/g, " ")}`);
  return `${languageName(m.source_language)}→${languageName(m.target_language)}` +
    (bleu.length ? ` (${bleu.join(", ")})` : "");
}

function summarise() {
  const source = $("source").value;
  const target = $("target").value;
  const find = (s, t) => page.models.find((m) => m.source_language === s && m.target_language === t);
  let what;
  if (source === AUTO) {
    what = `${page.models.length} models; the source language is detected`;
  } else if (find(source, target)) {
    what = `Model: ${describeModel(find(source, target))}`;
  } else {
    const pivot = page.models.find((m) => m.source_language === source && find(m.target_language, target));
    what = pivot
      ? `Through ${languageName(pivot.target_language)}: ${describeModel(pivot)}, then ` +
        describeModel(find(pivot.target_language, target))
      : "No model for this pair";
  }
  $("model-summary").textContent = `${what}. Trained on image captions (Multi30k): expect good translations ` +
    "of short sentences describing people, animals and scenes, and weak ones elsewhere.";
}

async function start() {
  try {
    Object.assign(page.settings, await api("/frontend/settings"));
  } catch (err) {
    showError(err.message);
  }
  if (page.settings.keyRequired) showKeyBox();
  $("api-key").value = localStorage.getItem("nmt-api-key") || "";
  $("file-limit").textContent = `${page.settings.fileCharLimit.toLocaleString()} characters`;
  fillBeams();
  updateCounter();
  try {
    page.languages = await api("/languages");
    Object.assign(page.names, page.settings.languageNames || {});
    page.languages.forEach((l) => { page.names[l.code] = l.name; });
    fillLanguages("de", "en");
    const models = await api("/v1/models");
    page.models = models.models;
    summarise();
  } catch (err) {
    $("model-summary").textContent = "";
    showError(err.message);
  }
  $("source").addEventListener("change", () => { fillTargets(); summarise(); translate(); });
  $("target").addEventListener("change", () => { summarise(); translate(); });
  $("beam").addEventListener("change", translate);
  $("alternatives").addEventListener("change", translate);
  $("swap").addEventListener("click", swap);
  $("copy").addEventListener("click", copyTranslation);
  $("source-text").addEventListener("input", () => { updateCounter(); scheduleTranslate(); });
  $("source-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      translate();
    }
  });
  $("api-key").addEventListener("change", () => localStorage.setItem("nmt-api-key", $("api-key").value.trim()));
  $("file-form").addEventListener("submit", translateFile);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
