// The playground: four panels over the public API. Read /readyz and /model first; while the model
// is not ready, say why and retry; once it is, fill the panels. No framework, no build step.
import { ApiError, call, form, getJSON, hasApiKey, onUnauthorized, onVersion, setApiKey } from "./api.js";
import { Pad } from "./pad.js";

const $ = (id) => document.getElementById(id);
const POLL_S = 5; // readiness and version check while the page is open
const state = {
  version: null, // the version the model card shows
  preprocessing: null, // the manifest's, for /similarity of a reconstruction
  started: false, // panels filled once the model was first ready
  source: null, // the blob last reconstructed in panel 1 (a drawing or an upload)
  ends: { a: null, b: null }, // interpolation ends: {z, label}
  frames: [], // data: URLs of the path's images
  tickets: {}, // the latest request of each panel: older answers arriving late are dropped
};

// --- helpers -------------------------------------------------------------------------------------

const text = (error) => (error instanceof ApiError ? error.message : `the page failed: ${error}`);
function fmt(value) {
  if (typeof value !== "number") return String(value);
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2); // parity errors: 2.41e-6
  return Number(value.toPrecision(4)).toLocaleString("en");
}

function showError(id, error) {
  $(id).textContent = error ? text(error) : "";
  $(id).hidden = !error;
}

// A panel's request takes a ticket: the panel is aria-busy until its latest request settles.
function ticket(panel) {
  state.tickets[panel] = (state.tickets[panel] ?? 0) + 1;
  const mine = state.tickets[panel];
  $(panel).setAttribute("aria-busy", "true");
  return () => mine === state.tickets[panel]; // still the latest?
}

function settled(panel, latest) {
  if (latest()) $(panel).removeAttribute("aria-busy");
}

// Show a PNG (blob or URL) enlarged by a whole factor up to about `target` CSS pixels: crisp pixels.
function showImage(img, source, target) {
  if (img.dataset.blob) URL.revokeObjectURL(img.dataset.blob);
  const url = source instanceof Blob ? URL.createObjectURL(source) : source;
  img.dataset.blob = source instanceof Blob ? url : "";
  return new Promise((resolve, reject) => {
    img.onload = () => {
      const w = img.naturalWidth;
      img.width = w >= target ? target : w * Math.floor(target / w);
      img.hidden = false;
      resolve(img);
    };
    img.onerror = () => {
      img.hidden = true;
      reject(new ApiError("the answer is not an image this browser can show", 0));
    };
    img.src = url;
  });
}

function hide(...imgs) {
  for (const img of imgs) img.hidden = true;
}

// --- 1. draw or drop -----------------------------------------------------------------------------

const pad = new Pad($("pad"), () => reconstruct(pad.framed()));

// `source`: a blob, or the promise of one (the framed drawing): the request's turn is taken first,
// so an upload picked while a stroke is still being framed wins.
async function reconstruct(source) {
  const latest = ticket("draw");
  try {
    const blob = await source;
    const recon = await (await call("reconstruct", { method: "POST", body: form({ file: blob }) })).blob();
    const pair = form({ a: blob, b: await unpadded(recon) });
    const distances = await getJSON("similarity", { method: "POST", body: pair });
    if (!latest()) return;
    await Promise.all([showImage($("input"), blob, 160), showImage($("recon"), recon, 160)]);
    $("learned").textContent = fmt(distances.learned_distance);
    $("pixel").textContent = fmt(distances.pixel_distance);
    state.source = blob;
    showError("draw-error", null);
  } catch (error) {
    if (!latest()) return;
    hide($("input"), $("recon"));
    $("learned").textContent = $("pixel").textContent = "–";
    state.source = null;
    showError("draw-error", error);
  } finally {
    if (latest()) $("to-a").disabled = $("to-b").disabled = state.source === null;
    settled("draw", latest);
  }
}

// The reconstruction is a model output: already padded. Without its padding, the service's
// preprocessing (fit to the same size, pad) gives back exactly those pixels, so /similarity
// compares the input with the reconstruction itself, not with a shrunk copy of it.
async function unpadded(recon) {
  const [top, bottom, left, right] = state.preprocessing?.pad ?? [0, 0, 0, 0];
  if (top + bottom + left + right === 0) return recon;
  const image = await createImageBitmap(recon);
  const canvas = document.createElement("canvas");
  canvas.width = image.width - left - right;
  canvas.height = image.height - top - bottom;
  canvas.getContext("2d").drawImage(image, -left, -top);
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob), "image/png"));
}

function upload(file) {
  if (file) reconstruct(file); // sent as it is: the service decodes and preprocesses any image
}

$("clear").addEventListener("click", () => pad.clear());
$("pick").addEventListener("change", (e) => {
  upload(e.target.files[0]);
  e.target.value = ""; // picking the same file again is a new pick
});
const drop = $("draw");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  $("pad").classList.add("over");
});
drop.addEventListener("dragleave", () => $("pad").classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  $("pad").classList.remove("over");
  upload(e.dataTransfer.files[0]);
});

// --- 2. sample -----------------------------------------------------------------------------------

async function sample() {
  const n = Number($("n").value) || 16;
  const query = new URLSearchParams({ n, temperature: $("temperature").value, nrow: Math.ceil(Math.sqrt(n)) });
  if ($("seed").value !== "") query.set("seed", $("seed").value);
  if ($("label").value !== "") query.set("label", $("label").value);
  if (!$("prior-field").hidden) query.set("prior", $("prior").value);
  const path = `sample?${query}`;
  $("sample-call").textContent = `GET /${path}`;
  const latest = ticket("sample");
  try {
    const response = await call(path);
    const blob = await response.blob();
    if (!latest()) return;
    $("seed").value = response.headers.get("X-Seed") ?? $("seed").value; // the seed drawn when none was set
    await showImage($("grid"), blob, 420);
    if (performance.getEntriesByName("first-sample-grid").length === 0) performance.mark("first-sample-grid");
    showError("sample-error", null);
  } catch (error) {
    if (!latest()) return;
    hide($("grid"));
    showError("sample-error", error);
  } finally {
    settled("sample", latest);
  }
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

for (const id of ["n", "seed", "temperature", "label", "prior"]) $(id).addEventListener("change", sample);
$("temperature").addEventListener("input", () => {
  $("temperature-value").textContent = Number($("temperature").value).toFixed(1);
});
$("new-seed").addEventListener("click", () => {
  $("seed").value = randomSeed();
  sample();
});

// A class picker only for bundles with classes (/model's `classes`; missing or empty: none).
function showClasses(classes) {
  const select = $("label");
  const chosen = select.value;
  select.replaceChildren(new Option("any", ""), ...classes.map((name) => new Option(name, name)));
  select.value = classes.includes(chosen) ? chosen : "";
  $("label-field").hidden = classes.length === 0;
}

// --- 3. interpolate ------------------------------------------------------------------------------

async function randomEnd(which) {
  const seed = randomSeed();
  try {
    const answer = await getJSON(`sample?n=1&seed=${seed}`); // the JSON answer carries the latent
    setEnd(which, answer.latents[0], `random latent (seed ${seed})`);
  } catch (error) {
    showError("interpolate-error", error);
  }
}

async function sourceEnd(which) {
  try {
    const posterior = await getJSON("encode", { method: "POST", body: form({ file: state.source }) });
    setEnd(which, posterior.mu, state.source.name ? `upload ${state.source.name}` : "drawing"); // the mean /interpolate uses for images
  } catch (error) {
    showError("interpolate-error", error);
  }
}

function setEnd(which, z, label) {
  state.ends[which] = { z, label };
  $(`end-${which}`).textContent = label;
  if (state.ends.a && state.ends.b) interpolate();
}

async function interpolate() {
  const steps = Number($("steps").value) || 10;
  const path = `interpolate?steps=${steps}&method=${$("method").value}`;
  $("interpolate-call").textContent = `POST /${path}  {"a": [...], "b": [...]}`;
  const latest = ticket("interpolate");
  try {
    const answer = await getJSON(path, { method: "POST", body: { a: state.ends.a.z, b: state.ends.b.z } });
    if (!latest()) return;
    state.frames = answer.images.map((png) => `data:image/png;base64,${png}`);
    $("strip").replaceChildren(...state.frames.map((src, i) => Object.assign(new Image(), { src, alt: `step ${i}` })));
    $("slider").max = state.frames.length - 1;
    $("slider").value = Math.min(Number($("slider").value), state.frames.length - 1);
    await showFrame();
    showError("interpolate-error", null);
  } catch (error) {
    if (!latest()) return;
    hide($("frame"));
    $("strip").replaceChildren();
    showError("interpolate-error", error);
  } finally {
    settled("interpolate", latest);
  }
}

async function showFrame() {
  const i = Number($("slider").value);
  $("strip").querySelectorAll("img").forEach((img, j) => img.classList.toggle("current", i === j));
  if (state.frames[i]) await showImage($("frame"), state.frames[i], 192);
}

$("slider").addEventListener("input", () => showFrame().catch((e) => showError("interpolate-error", e)));
$("random-a").addEventListener("click", () => randomEnd("a"));
$("random-b").addEventListener("click", () => randomEnd("b"));
$("to-a").addEventListener("click", () => sourceEnd("a"));
$("to-b").addEventListener("click", () => sourceEnd("b"));
for (const id of ["method", "steps"]) $(id).addEventListener("change", () => state.ends.a && state.ends.b && interpolate());

// --- 4. model card -------------------------------------------------------------------------------

function fact(term, value, id) {
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = term;
  dd.textContent = value ?? "–";
  if (id) dd.id = id;
  return [dt, dd];
}

function rows(table, entries) {
  const tr = ([key, value]) => {
    const row = document.createElement("tr");
    row.append(...[key, fmt(value)].map((cell) => Object.assign(document.createElement("td"), { textContent: cell })));
    return row;
  };
  table.tBodies[0].replaceChildren(...entries.map(tr));
}

// Where /sample draws z: the fitted mixture (docs/api.md, "Priors") or only the paper's N(0, I).
function priorSummary(prior) {
  if (!prior) return "N(0, I) only";
  const perClass = prior.class_components ? `, ${prior.class_components} per class` : "";
  return `fitted: ${prior.components} Gaussians${perClass} (or N(0, I))`;
}

// The prior switch only for bundles with a fitted prior; a bundle without one always samples N(0, I).
function showPrior(model) {
  $("prior-field").hidden = !model.prior;
}

function showCard(model) {
  const m = model.manifest;
  const t = m.training ?? {};
  const budget = `${fmt(t.epochs)} epochs, ${fmt(t.steps)} steps` + (t.batch_size ? ` of batch ${t.batch_size}` : "");
  $("card-facts").replaceChildren(
    ...fact("model", m.name),
    ...fact("version", m.version, "card-version"),
    ...fact("created", m.created_at),
    ...fact("preset", m.preset),
    ...fact("dataset", m.dataset),
    ...fact("image, latent", `${m.image.height}×${m.image.width}×${m.image.channels}, z ∈ ℝ^${m.latent_dim}`),
    ...fact("training budget", budget),
    ...fact("prior", priorSummary(model.prior), "card-prior"),
    ...fact("objective", [t.mode, t.recipe && `recipe ${t.recipe}`, t.gamma !== undefined && `γ = ${t.gamma}`].filter(Boolean).join(", ")),
    ...fact("provider", model.provider, "card-provider"),
    ...fact("loaded in", `${fmt(model.load_seconds)} s`),
  );
  rows($("card-metrics"), Object.entries(m.metrics ?? {}));
  rows($("card-parity"), Object.entries(m.parity ?? {}));
}

async function loadModel() {
  try {
    const model = await getJSON("model");
    state.version = model.manifest.version;
    state.preprocessing = model.manifest.preprocessing;
    showCard(model);
    showClasses(model.classes ?? []);
    showPrior(model);
    $("n").max = model.limits.max_samples;
    showError("card-error", null);
  } catch (error) {
    showError("card-error", error);
  }
}

// A hot reload: an answer came from another version than the card shows.
function versionSeen(version) {
  if (state.version === null || version === state.version) return;
  const notice = $("reload-notice");
  notice.textContent = `The service switched models: version ${version} now answers (was ${state.version}).`;
  notice.hidden = false;
  state.version = version; // the card catches up below; no second notice meanwhile
  loadModel();
}
onVersion(versionSeen);

// --- API key (a service started with VAEGAN_API_KEYS answers 401 without one) ------------------------

onUnauthorized(() => {
  $("key-form").hidden = false;
  if (!hasApiKey()) $("api-key").focus();
});
$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setApiKey($("api-key").value);
  $("key-form").hidden = true;
  await loadModel();
  sample();
  await Promise.all([randomEnd("a"), randomEnd("b")]);
});

// --- readiness -----------------------------------------------------------------------------------

function setStatus(message, down) {
  $("status").textContent = message;
  $("status").classList.toggle("down", down);
}

async function connect() {
  let wait = POLL_S;
  try {
    const ready = await getJSON("readyz");
    if (!state.started) {
      await loadModel();
      state.started = true;
      sample();
      await Promise.all([randomEnd("a"), randomEnd("b")]);
    } else if (state.version === null) {
      await loadModel(); // the card failed to load the first time
    }
    setStatus(`Ready: ${ready.model}, version ${ready.version}.`, false);
    versionSeen(ready.version);
  } catch (error) {
    wait = error.retryAfterS || 2;
    setStatus(`The model is not ready: ${text(error)}. Retrying in ${wait} s…`, true);
  }
  setTimeout(connect, wait * 1000);
}

connect();
