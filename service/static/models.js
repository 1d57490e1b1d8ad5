// The model picker: GET /models lists what the service serves; with several, a picker in the header
// chooses the one every panel asks (`model=` on each request, and in the link).
import { useModel } from "./api.js";
import { $ } from "./dom.js";
import { linked, problem, put } from "./link.js";

// `onPick(name)`: the person picked another model.
export function mount({ onPick }) {
  let chosen = null; // the name every request names; null until /models answered
  const select = $("model");
  select.addEventListener("change", () => choose(select.value) && onPick(select.value));

  function choose(name) {
    if (name === chosen) return false;
    chosen = name;
    const several = select.options.length > 1;
    useModel(several ? name : null); // one model: no `model=` at all, as before several could be served
    put("model", several ? name : null);
    return true;
  }

  return {
    // The listed models (each {name, default, ready, version, reason, ...}); the chosen one's entry.
    list(models) {
      const names = models.map((m) => m.name);
      if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
        select.replaceChildren(...models.map((m) => new Option(`${m.name}${m.conditional ? " (conditional)" : ""}`, m.name)));
      }
      $("model-field").hidden = models.length < 2;
      if (chosen === null) {
        const wanted = linked("model");
        const fallback = (models.find((m) => m.default) ?? models[0]).name;
        if (wanted !== null && !names.includes(wanted)) problem(`model=${wanted} (this service serves ${names.join(", ")})`);
        choose(names.includes(wanted) ? wanted : fallback);
      }
      select.value = chosen;
      return models.find((m) => m.name === chosen);
    },
  };
}
