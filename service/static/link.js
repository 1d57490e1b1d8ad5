// Links that reproduce: the page keeps its state in the URL's query (history.replaceState, no reload)
// and restores it on load, so a copied link shows the same images. Controls marked
// `data-link="key"` are saved and restored by their value; the rest (the seeds of random digits and
// latents, the model) by `linked`/`put`. A value the page cannot take is named in the link notice, and
// the control keeps its default.
import { $ } from "./dom.js";

const given = new URLSearchParams(location.search); // what the opened link asked for
const extra = new Map(); // state that is no control's value: random ends' seeds, the model
const problems = [];

export const linked = (key) => given.get(key);

export function put(key, value) {
  if (value === null || value === undefined || value === "") extra.delete(key);
  else extra.set(key, String(value));
  save();
}

// Controls inside a hidden field are not part of what the page shows (a prior switch of a model
// without a fitted prior): they are neither saved nor restored.
const controls = () => [...document.querySelectorAll("[data-link]")].filter((c) => !c.closest("[hidden]"));

export function save() {
  const query = new URLSearchParams(extra);
  for (const control of controls()) if (control.value !== "") query.set(control.dataset.link, control.value);
  const search = query.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

// Why `wanted` did not stick in `control` (null when it did).
function refusal(control, wanted) {
  if (control.tagName === "SELECT") {
    if (control.value === wanted) return null;
    return `not one of ${[...control.options].map((o) => o.value || o.text).join(", ")}`;
  }
  if (control.value === "") return "not a number";
  if (!control.checkValidity()) return control.validationMessage.replace(/\.$/, "");
  if (Number(control.value) !== Number(wanted)) return `not a value of this control (${control.min}..${control.max}, step ${control.step})`;
  return null;
}

// Every key a link may hold: the linked controls' (shown or not) and the state kept by `put`.
const KNOWN = new Set([...document.querySelectorAll("[data-link]")].map((c) => c.dataset.link).concat("model", "a", "b", "edit-seed"));

// Give every shown linked control the link's value (once the model's options are in place), checked.
export function restore() {
  for (const control of controls()) {
    const wanted = given.get(control.dataset.link);
    if (wanted === null) continue;
    const before = control.value;
    control.value = wanted;
    const why = refusal(control, wanted);
    if (why !== null) {
      control.value = before;
      problem(`${control.dataset.link}=${wanted} (${why})`);
    }
    control.dispatchEvent(new Event("input")); // outputs beside sliders follow
  }
  for (const key of given.keys()) if (!KNOWN.has(key)) problem(`${key} (unknown here)`);
}

export function problem(text) {
  problems.push(text);
  const notice = $("link-notice");
  notice.textContent = `This link asked for what the page cannot show; it ignored: ${problems.join("; ")}.`;
  notice.hidden = false;
}
