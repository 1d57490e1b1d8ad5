// The public API, called as the README's curl lines call it (relative URLs: the page works behind a
// path prefix too). A refusal becomes an ApiError whose message is the service's JSON `detail`.

export class ApiError extends Error {
  constructor(message, status, retryAfterS = 0) {
    super(message);
    this.status = status; // 0: the service could not be reached at all
    this.retryAfterS = retryAfterS; // from Retry-After on 503 answers
  }
}

let versionSeen = () => {};
let unauthorized = () => {};

// The model the routes serve: null while the service lists one model (every route serves it without
// `model=`); with several, every request names the chosen one, so a copied call is unambiguous.
let model = null;

export function useModel(name) {
  model = name;
}

// A route's relative URL with its query: `route("sample", {n: 16, seed: ""})` -> "sample?n=16&model=…".
// Empty values are left out (the service's default applies).
export function route(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) query.set(key, value);
  if (model !== null) query.set("model", model);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// A service started with VAEGAN_API_KEYS answers 401 without a key. The person types one in; it
// is kept in this tab only (sessionStorage: gone when the tab closes) and sent with every call.
const KEY_STORAGE = "vaegan-api-key";
let apiKey = sessionStorage.getItem(KEY_STORAGE) ?? "";

export function setApiKey(key) {
  apiKey = key.trim();
  if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export function hasApiKey() {
  return apiKey !== "";
}

export function onUnauthorized(callback) {
  unauthorized = callback;
}

// Every inference answer names the model version that produced it (X-Model-Version): a hot reload
// shows up on the first answer after it. Only the chosen model's answers count (a late answer of the
// model shown before a switch names that model's version).
export function onVersion(callback) {
  versionSeen = callback;
}

export async function call(path, { method = "GET", body, json = false } = {}) {
  const init = { method, headers: {} };
  if (json) init.headers.Accept = "application/json";
  if (apiKey) init.headers.Authorization = `Bearer ${apiKey}`;
  if (body instanceof FormData) {
    init.body = body; // the browser writes the multipart boundary
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("the service cannot be reached (is vaegan-serve running?)", 0, 2);
  }
  const version = response.headers.get("X-Model-Version");
  if (version && new URL(response.url).searchParams.get("model") === model) versionSeen(version);
  if (response.status === 401) unauthorized();
  if (!response.ok) throw await refusal(response);
  return response;
}

async function refusal(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json(); // {"error": code, "detail": text}
    if (typeof body.detail === "string") detail = body.detail;
  } catch {
    // not JSON (a proxy's page?): the status line says what is known
  }
  return new ApiError(detail, response.status, Number(response.headers.get("Retry-After")) || 0);
}

export async function getJSON(path, options = {}) {
  return (await call(path, { ...options, json: true })).json();
}

export function form(fields) {
  const data = new FormData();
  for (const [name, blob] of Object.entries(fields)) data.append(name, blob, blob.name || `${name}.png`);
  return data;
}
