// Panel 5, walk the latent space: POST /interpolate between two ends, each a random latent (the z of
// GET /sample?n=1 from a seed, kept in the link) or panel 1's image (its posterior mean, POST /encode).
import { call, getJSON, form, route } from "./api.js";
import { $, Download, fileName, fillClasses, randomSeed, showError, ticket } from "./dom.js";
import { Frames } from "./frames.js";
import { linked, problem, put, save } from "./link.js";

export function mount() {
  let model = null; // /model's answer
  const ends = { a: null, b: null }; // {seed} or {blob, label, name}; `z` caches the latent per model version
  const download = new Download($("path-download"), "interpolate-error");
  const frames = new Frames({ strip: $("strip"), slider: $("slider"), frame: $("frame"), caption: () => {} });

  async function latent(end) {
    const key = `${model.manifest.name} ${model.manifest.version}`;
    end.z ??= {};
    if (end.z[key]) return end.z[key];
    if (end.seed !== undefined) {
      end.z[key] = (await getJSON(route("sample", { n: 1, seed: end.seed }))).latents[0]; // the JSON answer carries z
    } else {
      const path = route("encode", { label: model.conditional ? end.label : "" });
      end.z[key] = (await getJSON(path, { method: "POST", body: form({ file: end.blob }) })).mu; // the mean /interpolate uses for images
    }
    return end.z[key];
  }

  const words = (end) => end.name ?? `random latent (seed ${end.seed})`;

  async function run() {
    if (!ends.a || !ends.b || model === null) return;
    const steps = Number($("steps").value) || 10;
    const label = model.conditional ? $("path-label").value : "";
    const path = route("interpolate", { steps, method: $("method").value, label });
    $("interpolate-call").textContent = `POST /${path}  {"a": [...], "b": [...]}`;
    const latest = ticket("interpolate");
    try {
      const body = { a: await latent(ends.a), b: await latent(ends.b) };
      const answer = await getJSON(path, { method: "POST", body });
      if (!latest()) return;
      await frames.show(answer.images, (i) => `step ${i}`);
      const end = (e) => (e.seed !== undefined ? `seed${e.seed}` : e.name.replace(/^upload /, "").replace(/\.[^.]*$/, ""));
      const name = fileName(model.manifest.name, "path", { from: end(ends.a), to: end(ends.b), steps, "": $("method").value, class: label });
      download.offer(async () => ({ blob: await (await call(path, { method: "POST", body })).blob(), name }));
      save();
      showError("interpolate-error", null);
    } catch (error) {
      if (!latest()) return;
      frames.clear();
      download.offer(null);
      showError("interpolate-error", error);
    } finally {
      latest.settle();
    }
  }

  function setEnd(which, end) {
    ends[which] = end;
    $(`end-${which}`).textContent = words(end);
    put(which, end.seed ?? null); // an image is no part of a link
  }

  // The link's seed for an end, or a new one.
  function seedOf(which) {
    const seed = linked(which);
    if (seed === null) return randomSeed();
    if (/^\d+$/.test(seed)) return Number(seed);
    problem(`${which}=${seed} (not a seed)`);
    return randomSeed();
  }

  for (const which of ["a", "b"]) {
    $(`random-${which}`).addEventListener("click", () => {
      setEnd(which, { seed: randomSeed() });
      run();
    });
  }
  for (const id of ["method", "steps", "path-label"]) $(id).addEventListener("change", run);
  $("slider").addEventListener("input", () => frames.current().then(save, (e) => showError("interpolate-error", e)));

  return {
    // A conditional model decodes the path with a class: the person picks it.
    model(info) {
      model = info;
      fillClasses($("path-label"), info.classes ?? []);
      $("path-label-field").hidden = !info.conditional;
    },
    run() {
      if (ends.a === null) setEnd("a", { seed: seedOf("a") });
      if (ends.b === null) setEnd("b", { seed: seedOf("b") });
      return run();
    },
    use(which, image) {
      setEnd(which, { blob: image.blob, label: image.label, name: image.name });
      return run();
    },
  };
}
