// The DOM helpers every panel shares: lookup, numbers, errors, busy panels, enlarged images, class
// pickers and downloads. Nothing here knows a route of the API.
import { ApiError } from "./api.js";

export const $ = (id) => document.getElementById(id);

export const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

export const errorText = (error) => (error instanceof ApiError ? error.message : `the page failed: ${error}`);

export function fmt(value) {
  if (typeof value !== "number") return String(value);
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2); // parity errors: 2.41e-6
  return Number(value.toPrecision(4)).toLocaleString("en");
}

export function showError(id, error) {
  $(id).textContent = error ? errorText(error) : "";
  $(id).hidden = !error;
}

// A panel's request takes a ticket: the panel is aria-busy until its latest request settles, and an
// older answer arriving late is dropped (latest() is false for it).
const tickets = {};
export function ticket(panel) {
  tickets[panel] = (tickets[panel] ?? 0) + 1;
  const mine = tickets[panel];
  $(panel).setAttribute("aria-busy", "true");
  const latest = () => mine === tickets[panel];
  latest.settle = () => latest() && $(panel).removeAttribute("aria-busy");
  return latest;
}

// Show a PNG (blob or URL) enlarged by a whole factor up to about `target` CSS pixels: crisp pixels.
export function showImage(img, source, target) {
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

export function hide(...elements) {
  for (const element of elements) element.hidden = true;
}

// A class picker over the model's classes, keeping the chosen class when the new model has it too.
export function fillClasses(select, classes, first = []) {
  const chosen = select.value;
  select.replaceChildren(...first.map(([text, value]) => new Option(text, value)), ...classes.map((c) => new Option(c, c)));
  if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
}

// A file name that says what the picture is: vaegan-<model>-<what>-<key><value>-….png (key "": the value alone)
export function fileName(model, what, parts = {}) {
  const words = Object.entries(parts)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${key}${value}`);
  return [`vaegan-${model}`, what, ...words].join("-").replace(/[^A-Za-z0-9._-]+/g, "_") + ".png";
}

// A download button: `offer(fetch)` arms it with a function that gives {blob, name} (the PNG at hand,
// or asked of the API when clicked); `offer(null)` disables it while there is nothing to keep.
export class Download {
  constructor(button, errorId) {
    this.button = button;
    this.fetch = null;
    button.disabled = true;
    button.addEventListener("click", () => this.save().catch((error) => showError(errorId, error)));
  }

  offer(fetch) {
    this.fetch = fetch;
    this.button.disabled = fetch === null;
  }

  async save() {
    if (this.fetch === null) return;
    const { blob, name } = await this.fetch();
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000); // the browser has copied it by then
  }
}
