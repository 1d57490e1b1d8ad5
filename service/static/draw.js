// Panel 1, draw or drop: POST /reconstruct of a drawing or any image, POST /similarity between the
// input and its reconstruction. The image then serves the other panels (interpolation ends, edits).
import { call, form, getJSON, route } from "./api.js";
import { $, Download, fileName, fillClasses, fmt, hide, showError, showImage, ticket } from "./dom.js";
import { Pad } from "./pad.js";

// `use(which, source)`: hand the current image ({blob, label, name}) to "a", "b" (the path's ends) or "edit".
export function mount({ use }) {
  let model = null; // /model's answer
  let source = null; // the image last reconstructed: {blob, label, name}
  const download = new Download($("recon-download"), "draw-error");
  const pad = new Pad($("pad"), () => reconstruct(pad.framed()));

  // `blob`: a blob, or the promise of one (the framed drawing): the request's turn is taken first,
  // so an upload picked while a stroke is still being framed wins.
  async function reconstruct(blob) {
    const latest = ticket("draw");
    try {
      const input = await blob;
      const label = model?.conditional ? $("draw-label").value : ""; // a conditional model needs the class
      const recon = await (await call(route("reconstruct", { label }), { method: "POST", body: form({ file: input }) })).blob();
      const pair = form({ a: input, b: await unpadded(recon) });
      const distances = await getJSON(route("similarity"), { method: "POST", body: pair });
      if (!latest()) return;
      await Promise.all([showImage($("input"), input, 160), showImage($("recon"), recon, 160)]);
      $("learned").textContent = fmt(distances.learned_distance);
      $("pixel").textContent = fmt(distances.pixel_distance);
      source = { blob: input, label, name: input.name ? `upload ${input.name}` : "drawing" };
      const stem = input.name ? input.name.replace(/\.[^.]*$/, "") : "drawing";
      const name = fileName(model?.manifest.name ?? "model", "reconstruction", { "": stem, class: label });
      download.offer(async () => ({ blob: recon, name }));
      showError("draw-error", null);
    } catch (error) {
      if (!latest()) return;
      hide($("input"), $("recon"));
      $("learned").textContent = $("pixel").textContent = "–";
      source = null;
      download.offer(null);
      showError("draw-error", error);
    } finally {
      if (latest()) for (const id of ["to-a", "to-b", "to-edit"]) $(id).disabled = source === null;
      latest.settle();
    }
  }

  // The reconstruction is a model output: already padded. Without its padding, the service's
  // preprocessing (fit to the same size, pad) gives back exactly those pixels, so /similarity
  // compares the input with the reconstruction itself, not with a shrunk copy of it.
  async function unpadded(recon) {
    const [top, bottom, left, right] = model?.manifest.preprocessing?.pad ?? [0, 0, 0, 0];
    if (top + bottom + left + right === 0) return recon;
    const image = await createImageBitmap(recon);
    const canvas = document.createElement("canvas");
    canvas.width = image.width - left - right;
    canvas.height = image.height - top - bottom;
    canvas.getContext("2d").drawImage(image, -left, -top);
    return new Promise((resolve) => canvas.toBlob((png) => resolve(png), "image/png"));
  }

  const upload = (file) => file && reconstruct(file); // sent as it is: the service decodes and preprocesses any image
  $("clear").addEventListener("click", () => pad.clear());
  $("pick").addEventListener("change", (e) => {
    upload(e.target.files[0]);
    e.target.value = ""; // picking the same file again is a new pick
  });
  const panel = $("draw");
  panel.addEventListener("dragover", (e) => {
    e.preventDefault();
    $("pad").classList.add("over");
  });
  panel.addEventListener("dragleave", () => $("pad").classList.remove("over"));
  panel.addEventListener("drop", (e) => {
    e.preventDefault();
    $("pad").classList.remove("over");
    upload(e.dataTransfer.files[0]);
  });
  $("draw-label").addEventListener("change", () => source && reconstruct(source.blob));
  for (const which of ["a", "b", "edit"]) $(`to-${which}`).addEventListener("click", () => source && use(which, source));

  return {
    // A conditional model encodes and decodes with the image's class: the person says which.
    model(info) {
      model = info;
      fillClasses($("draw-label"), info.classes ?? []);
      $("draw-label-field").hidden = !info.conditional;
      if (source) reconstruct(source.blob); // the same image through the new model
    },
  };
}
