// A row of frames with a slider over it and the frame under the slider shown large: the path of
// POST /interpolate and the strength strip of POST /edit.
import { showImage } from "./dom.js";

export class Frames {
  // strip: the row's element; slider: <input type=range>; frame: the large <img>; caption(i): its words
  constructor({ strip, slider, frame, caption }) {
    Object.assign(this, { strip, slider, frame, caption, urls: [] });
  }

  // Show the JSON answer's base64 PNGs; the slider keeps its place where the new row has it.
  async show(images, alt) {
    this.urls = images.map((png) => `data:image/png;base64,${png}`);
    this.strip.replaceChildren(...this.urls.map((src, i) => Object.assign(new Image(), { src, alt: alt(i) })));
    this.slider.max = this.urls.length - 1;
    this.slider.value = Math.min(Number(this.slider.value), this.urls.length - 1);
    await this.current();
  }

  clear() {
    this.urls = [];
    this.strip.replaceChildren();
    this.frame.hidden = true;
    this.caption("");
  }

  // The frame under the slider, large, with its caption; the strip marks it.
  async current() {
    const i = Number(this.slider.value);
    this.strip.querySelectorAll("img").forEach((img, j) => img.classList.toggle("current", i === j));
    if (!this.urls[i]) return;
    await showImage(this.frame, this.urls[i], 192);
    this.caption(i);
  }
}
