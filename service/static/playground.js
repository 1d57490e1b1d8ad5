// The playground's wiring and readiness: GET /models says which models are served and whether the
// chosen one is ready; while it is not, say why and retry; once it is, load its card (GET /model)
// and let every panel ask. Each panel is its own module; this one only connects them.
import { ApiError, getJSON, hasApiKey, onUnauthorized, onVersion, route, setApiKey } from "./api.js";
import * as card from "./card.js";
import { $, errorText, showError } from "./dom.js";
import { mount as mountDraw } from "./draw.js";
import { mount as mountEdit } from "./edit.js";
import { mount as mountGrid } from "./grid.js";
import { mount as mountInterpolate } from "./interpolate.js";
import { restore, save } from "./link.js";
import { mount as mountModels } from "./models.js";
import { mount as mountSample } from "./sample.js";

const POLL_S = 5; // readiness and version check while the page is open
let shown = null; // {name, version} of the model the card and panels show; null until loaded
let restored = false; // the link's settings are applied once, to the first model shown
let timer = null;

const models = mountModels({ onPick: () => ((shown = null), connect()) });
const edit = mountEdit();
const walk = mountInterpolate();
const use = (which, image) => (which === "edit" ? edit.use(image) : walk.use(which, image));
const panels = [mountDraw({ use }), mountSample(), mountGrid(), edit, walk];

// The chosen model's card; every panel learns its classes, prior and limits.
async function loadModel() {
  try {
    const model = await getJSON(route("model"));
    card.show(model);
    for (const panel of panels) panel.model(model);
    showError("card-error", null);
    return model;
  } catch (error) {
    showError("card-error", error);
    return null;
  }
}

async function show(name) {
  const model = await loadModel();
  if (model === null) return;
  if (!restored) restore();
  restored = true;
  shown = { name, version: model.manifest.version };
  save();
  await Promise.all(panels.map((panel) => panel.run?.()));
}

// A hot reload: an answer of the chosen model came from another version than the card shows.
function versionSeen(version) {
  if (shown === null || version === shown.version) return;
  const notice = $("reload-notice");
  notice.textContent = `The service switched models: version ${version} now answers (was ${shown.version}).`;
  notice.hidden = false;
  shown.version = version; // the card catches up below; no second notice meanwhile
  loadModel();
}
onVersion(versionSeen);

function setStatus(message, down) {
  $("status").textContent = message;
  $("status").classList.toggle("down", down);
}

function readyLine(listed, model) {
  const others = listed.filter((m) => !m.ready).map((m) => `${m.name} (${m.reason || "loading"})`);
  return `Ready: ${model.name}, version ${model.version}.` + (others.length ? ` Not ready: ${others.join(", ")}.` : "");
}

async function connect() {
  clearTimeout(timer);
  let wait = POLL_S;
  try {
    const listed = (await getJSON("models")).models;
    if (listed.length === 0) throw new ApiError("the service serves no model (VAEGAN_MODEL_NAME)", 503);
    const model = models.list(listed);
    if (!model.ready) throw new ApiError(`${model.name}: ${model.reason || "loading"}`, 503);
    if (shown?.name !== model.name) await show(model.name);
    setStatus(readyLine(listed, model), false);
    versionSeen(model.version);
  } catch (error) {
    if (error.status === 401) return setStatus("This service needs an API key.", true); // asked for above; sending it reconnects
    wait = error.retryAfterS || 2;
    setStatus(`The model is not ready: ${errorText(error)}. Retrying in ${wait} s…`, true);
  }
  timer = setTimeout(connect, wait * 1000);
}

// A service started with VAEGAN_API_KEYS answers 401 without a key: ask for it.
onUnauthorized(() => {
  $("key-form").hidden = false;
  if (!hasApiKey()) $("api-key").focus();
});
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey($("api-key").value);
  $("key-form").hidden = true;
  connect();
});

connect();
