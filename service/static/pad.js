// The drawing pad: pointer events (mouse, pen and touch alike), white strokes on black as in MNIST.

const DIGIT_SHARE = 20 / 28; // MNIST digits fill a 20x20 box centred in 28x28

export class Pad {
  constructor(canvas, onStroke) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onStroke = onStroke; // called when a stroke ends
    this.width = canvas.width / 13; // about MNIST's stroke once the digit is framed
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", () => this.up());
    canvas.addEventListener("pointercancel", () => this.up());
  }

  clear() {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.box = null; // [x0, y0, x1, y1] of the ink, in canvas pixels
    this.last = null;
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect(); // CSS pixels -> canvas pixels
    const x = ((event.clientX - rect.left) * this.canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * this.canvas.height) / rect.height;
    return [x, y];
  }

  down(event) {
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.point(event);
    this.line(this.last, this.last);
  }

  move(event) {
    if (this.last === null) return;
    const next = this.point(event);
    this.line(this.last, next);
    this.last = next;
  }

  up() {
    if (this.last === null) return;
    this.last = null;
    this.onStroke();
  }

  line([x0, y0], [x1, y1]) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = this.width;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    const r = this.width / 2;
    const [bx0, by0, bx1, by1] = this.box ?? [x0, y0, x0, y0];
    this.box = [Math.min(bx0, x0 - r, x1 - r), Math.min(by0, y0 - r, y1 - r), Math.max(bx1, x0 + r, x1 + r), Math.max(by1, y0 + r, y1 + r)];
  }

  // The drawing framed as MNIST frames a digit (its ink box scaled to 20/28 of the side and
  // centred), as a PNG blob: the service then resizes it to the model's input exactly as the trainer did.
  async framed() {
    const side = this.canvas.width;
    const out = document.createElement("canvas");
    out.width = out.height = side;
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, side, side);
    if (this.box !== null) {
      const [x0, y0, x1, y1] = this.box;
      const scale = (DIGIT_SHARE * side) / Math.max(x1 - x0, y1 - y0);
      ctx.imageSmoothingQuality = "high";
      ctx.setTransform(scale, 0, 0, scale, side / 2 - ((x0 + x1) / 2) * scale, side / 2 - ((y0 + y1) / 2) * scale);
      ctx.drawImage(this.canvas, 0, 0);
    }
    return new Promise((resolve) => out.toBlob((blob) => resolve(blob), "image/png"));
  }
}
