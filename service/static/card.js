// Panel 6, the model card: GET /model's manifest, provider, classes and prior, as facts and tables.
import { $, fmt } from "./dom.js";

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

// How a class is honoured: the decoder's label, or the class's own latents (docs/api.md, /sample).
function classSummary(model) {
  const classes = model.classes ?? [];
  if (classes.length === 0) return "none";
  const how = model.conditional ? "conditional: the label enters the encoder and decoder" : `honoured by ${model.label_method ?? "class means"}`;
  return `${classes.length} (${how})`;
}

export function show(model) {
  const m = model.manifest;
  const t = m.training ?? {};
  const budget = `${fmt(t.epochs)} epochs, ${fmt(t.steps)} steps` + (t.batch_size ? ` of batch ${t.batch_size}` : "");
  $("card-facts").replaceChildren(
    ...fact("model", m.name, "card-model"),
    ...fact("version", m.version, "card-version"),
    ...fact("created", m.created_at),
    ...fact("preset", m.preset),
    ...fact("dataset", m.dataset),
    ...fact("image, latent", `${m.image.height}×${m.image.width}×${m.image.channels}, z ∈ ℝ^${m.latent_dim}`),
    ...fact("training budget", budget),
    ...fact("classes", classSummary(model), "card-classes"),
    ...fact("prior", priorSummary(model.prior), "card-prior"),
    ...fact("objective", [t.mode, t.recipe && `recipe ${t.recipe}`, t.gamma !== undefined && `γ = ${t.gamma}`].filter(Boolean).join(", ")),
    ...fact("provider", model.provider, "card-provider"),
    ...fact("loaded in", `${fmt(model.load_seconds)} s`),
  );
  rows($("card-metrics"), Object.entries(m.metrics ?? {}));
  rows($("card-parity"), Object.entries(m.parity ?? {}));
}
