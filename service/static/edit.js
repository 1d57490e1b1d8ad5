// Panel 4, move a digit to another class: POST /edit of panel 1's image or of a random digit
// (GET /sample?n=1 from a seed, kept in the link), a strip over strengths and a slider along it.
import { call, form, getJSON, route } from "./api.js";
import { $, Download, fileName, fillClasses, fmt, hide, randomSeed, showError, showImage, ticket } from "./dom.js";
import { Frames } from "./frames.js";
import { linked, problem, put, save } from "./link.js";

const METHODS = {
  conditional:
    "a conditional model: z = μ(x, from) keeps the digit's style while the decoder's label slides from one class's one-hot to the other's (strength 0 to 1).",
  "class-mean":
    "Larsen et al. 2016, Sec. 5's attribute vectors: z = μ(x) + s · (mean latent of the target class − mean latent of the source class), s from 0 to 2.",
};

export function mount() {
  let model = null; // /model's answer
  let source = null; // {seed} (a random digit) or {blob, name} (panel 1's image)
  let digit = { key: null, blob: null }; // the random digit's PNG, for this model and seed
  const download = new Download($("edit-download"), "edit-error");
  const frames = new Frames({
    strip: $("edit-strip"),
    slider: $("edit-slider"),
    frame: $("edit-frame"),
    caption: (i) => ($("edit-strength").textContent = i === "" ? "" : `strength ${fmt(frames.strengths[i])}, frame ${i + 1} of ${frames.urls.length}`),
  });

  async function image() {
    if (source.blob) return source.blob;
    const key = `${model.manifest.name} ${source.seed}`;
    if (digit.key !== key) digit = { key, blob: await (await call(route("sample", { n: 1, seed: source.seed }))).blob() };
    return digit.blob;
  }

  async function run() {
    if (source === null || !(model?.classes?.length > 0)) return;
    const path = route("edit", { to: $("edit-to").value, from: $("edit-from").value, steps: Number($("edit-steps").value) || 5 });
    $("edit-call").textContent = `POST /${path}  (the digit as multipart file)`;
    const latest = ticket("edit");
    try {
      const blob = await image();
      const answer = await getJSON(path, { method: "POST", body: form({ file: blob }) });
      if (!latest()) return;
      await showImage($("edit-input"), blob, 96);
      frames.strengths = answer.edit.strengths;
      await frames.show(answer.images, (i) => `strength ${fmt(answer.edit.strengths[i])}`);
      const from = $("edit-from").value === "" ? `${answer.edit.source} (inferred)` : answer.edit.source;
      $("edit-source").textContent = `${source.name ?? `random digit, seed ${source.seed}`}: class ${from}`;
      const what = source.name ? source.name.replace(/\.[^.]*$/, "") : `seed${source.seed}`;
      const name = fileName(model.manifest.name, "edit", { "": what, from: answer.edit.source, to: answer.edit.target, frames: answer.images.length });
      download.offer(async () => ({ blob: await (await call(path, { method: "POST", body: form({ file: blob }) })).blob(), name }));
      save();
      showError("edit-error", null);
    } catch (error) {
      if (!latest()) return;
      hide($("edit-input"));
      frames.clear();
      download.offer(null);
      showError("edit-error", error);
    } finally {
      latest.settle();
    }
  }

  function random(seed = randomSeed()) {
    source = { seed };
    put("edit-seed", seed);
    return run();
  }

  $("edit-random").addEventListener("click", () => random());
  for (const id of ["edit-to", "edit-from", "edit-steps"]) $(id).addEventListener("change", run);
  $("edit-slider").addEventListener("input", () => frames.current().then(save, (e) => showError("edit-error", e)));

  return {
    model(info) {
      model = info;
      const classes = info.classes ?? [];
      const fresh = $("edit-to").options.length === 0;
      fillClasses($("edit-to"), classes);
      if (fresh) $("edit-to").value = classes.includes("8") ? "8" : classes.at(-1) ?? "";
      fillClasses($("edit-from"), classes, [["inferred", ""]]);
      $("edit-none").hidden = classes.length > 0;
      for (const id of ["edit-controls", "edit-strip", "edit-slider"]) $(id).hidden = classes.length === 0;
      $("edit-method").textContent = `POST /edit moves the digit towards the chosen class; ${METHODS[info.conditional ? "conditional" : "class-mean"]}`;
    },
    // The first run: the link's random digit, or a new one.
    run() {
      if (source !== null) return run();
      const seed = linked("edit-seed");
      if (seed === null) return random();
      if (/^\d+$/.test(seed)) return random(Number(seed));
      problem(`edit-seed=${seed} (not a seed)`);
      return random();
    },
    use(image) {
      source = { blob: image.blob, name: image.name };
      put("edit-seed", null);
      return run();
    },
  };
}
