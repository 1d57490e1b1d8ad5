// One sampled picture and its controls: what the sample panel (GET /sample) and the class grid panel
// (GET /sample/grid) share. The panel's elements are found by its id: `<panel>-call`, `-error`,
// `-download`; the seed, temperature and prior controls, the new-seed button and the image are given.
import { call } from "./api.js";
import { $, Download, fileName, hide, randomSeed, showError, showImage, ticket } from "./dom.js";
import { save } from "./link.js";

export class Picture {
  // path(): the request; parts(): what the file name says beside model and seed; width: CSS pixels
  constructor({ panel, what, image, seed, newSeed, temperature, priorField, width, path, parts }) {
    Object.assign(this, { panel, what, image, seed, priorField, width, path, parts, model: null });
    this.download = new Download($(`${panel}-download`), `${panel}-error`);
    const output = document.querySelector(`output[for="${temperature.id}"]`);
    temperature.addEventListener("input", () => (output.textContent = Number(temperature.value).toFixed(1)));
    newSeed.addEventListener("click", () => {
      seed.value = randomSeed();
      this.run();
    });
  }

  // The prior switch only for bundles with a fitted prior; a bundle without one always samples N(0, I).
  setModel(info) {
    this.model = info;
    this.priorField.hidden = !info.prior;
  }

  async run() {
    const path = this.path();
    $(`${this.panel}-call`).textContent = `GET /${path}`;
    const latest = ticket(this.panel);
    try {
      const response = await call(path);
      const blob = await response.blob();
      if (!latest()) return;
      this.seed.value = response.headers.get("X-Seed") ?? this.seed.value; // the seed drawn when none was set
      save();
      await showImage(this.image, blob, this.width);
      const name = fileName(this.model?.manifest.name ?? "model", this.what, { seed: this.seed.value, ...this.parts() });
      this.download.offer(async () => ({ blob, name }));
      showError(`${this.panel}-error`, null);
      return true;
    } catch (error) {
      if (!latest()) return;
      hide(this.image);
      this.download.offer(null);
      showError(`${this.panel}-error`, error);
    } finally {
      latest.settle();
    }
  }
}
