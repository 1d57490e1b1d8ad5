// Panel 2, sample the prior: a grid from GET /sample with n, seed, temperature, a class (models with
// classes) and the prior (bundles with a fitted one).
import { route } from "./api.js";
import { $, fillClasses } from "./dom.js";
import { Picture } from "./picture.js";

export function mount() {
  const prior = () => ($("prior-field").hidden ? "" : $("prior").value);
  const picture = new Picture({
    panel: "sample",
    what: "samples",
    image: $("grid"),
    seed: $("seed"),
    newSeed: $("new-seed"),
    temperature: $("temperature"),
    priorField: $("prior-field"),
    width: 420,
    path() {
      const n = Number($("n").value) || 16;
      const query = { n, seed: $("seed").value, temperature: $("temperature").value, nrow: Math.ceil(Math.sqrt(n)) };
      return route("sample", { ...query, label: $("label").value, prior: prior() });
    },
    parts: () => ({ n: $("n").value, t: $("temperature").value, class: $("label").value, prior: prior() }),
  });

  async function run() {
    const shown = await picture.run();
    if (shown && performance.getEntriesByName("first-sample-grid").length === 0) performance.mark("first-sample-grid");
  }
  for (const id of ["n", "seed", "temperature", "label", "prior"]) $(id).addEventListener("change", run);

  return {
    // A class picker only for bundles with classes (/model's `classes`; missing or empty: none).
    model(info) {
      const classes = info.classes ?? [];
      fillClasses($("label"), classes, [["any", ""]]);
      $("label-field").hidden = classes.length === 0;
      $("n").max = info.limits.max_samples;
      picture.setModel(info);
    },
    run,
  };
}
