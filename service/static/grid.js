// Panel 3, one row per class: GET /sample/grid, the same noise down each column (vae-gan-tf's result
// picture), with seed, temperature, samples per class and the prior (bundles with a fitted one).
import { route } from "./api.js";
import { $ } from "./dom.js";
import { Picture } from "./picture.js";

export function mount() {
  let classes = [];
  const prior = () => ($("classes-prior-field").hidden ? "" : $("classes-prior").value);
  const picture = new Picture({
    panel: "classes",
    what: "class-grid",
    image: $("classes-grid"),
    seed: $("classes-seed"),
    newSeed: $("classes-new-seed"),
    temperature: $("classes-temperature"),
    priorField: $("classes-prior-field"),
    width: 480,
    path: () => route("sample/grid", { per_class: $("per-class").value, seed: $("classes-seed").value, temperature: $("classes-temperature").value, prior: prior() }),
    parts: () => ({ per: $("per-class").value, t: $("classes-temperature").value, prior: prior() }),
  });

  const run = () => classes.length > 0 && picture.run();
  for (const id of ["per-class", "classes-seed", "classes-temperature", "classes-prior"]) $(id).addEventListener("change", run);

  return {
    // The grid needs classes; its size is bounded by VAEGAN_MAX_SAMPLES (classes x per class).
    model(info) {
      classes = info.classes ?? [];
      $("classes-none").hidden = classes.length > 0;
      $("classes-controls").hidden = $("classes-grid").hidden = classes.length === 0;
      const most = Math.max(1, Math.floor(info.limits.max_samples / Math.max(1, classes.length)));
      $("per-class").max = most;
      if (Number($("per-class").value) > most) $("per-class").value = most;
      picture.setModel(info);
    },
    run,
  };
}
