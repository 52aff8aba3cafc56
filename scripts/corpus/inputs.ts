/**
 * Representative inputs for the corpus models, which ship without data sets (no images or
 * recordings can be fetched here): structured synthetic images and audio, deterministic for a
 * seed, in each model's own layout and normalisation.
 *
 *   text-line          [3, 48, 192] a crop of one line of dark stroke glyphs on light paper, half
 *                      of the crops turned 180 degrees, PaddleOCR's (x - 0.5) / 0.5, zero padding
 *                      on the right (as PaddleOCR feeds its direction classifier)
 *   document           [3, H, W] several glyph lines of different sizes on paper with shading;
 *                      ImageNet mean/std (PaddleOCR's detector)
 *   scene              [3, H, W] in [0, 1]: sky/ground gradients, skin-toned and coloured ellipses,
 *                      boxes and texture noise (YOLO's input)
 *   music              [samples, 1] at 22.05 kHz: one to four harmonic notes (MIDI 36..84) with
 *                      attack/decay envelopes and a little noise
 *   speech-mel         [76, 32, 1]: speech-like audio (a pulse train with a drifting pitch through
 *                      moving formants, noise bursts, pauses) through openWakeWord's own mel front
 *                      end (x / 10 + 2), one 76-frame window per sample
 *   speech-embeddings  [T, 96]: T consecutive embeddings (hop 8 frames) of such audio by the
 *                      corpus embedding model, as openWakeWord feeds its wake-word heads
 *
 * What this means for the figures: agreement and SQNR measure how far the quantized model is from
 * the FP32 one on inputs with the structure of the real ones (strokes, edges, harmonics, formants),
 * not on the real distribution; they are fidelity figures, not accuracy figures.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeNpy } from '../../shared/data/npy';
import { ModelSession } from '../../shared/onnx/runtime';
import { Rng } from '../../shared/rng';
import { corpusBytes, corpusDir, type CorpusModel } from './fetch';

type Generator = CorpusModel['inputs']['generator'];

/** The corpus files a generator runs to make its inputs (fetch them with the model that uses it). */
export function generatorModels(generator: Generator): string[] {
  if (generator === 'speech-mel') return ['oww-melspectrogram'];
  if (generator === 'speech-embeddings') return ['oww-melspectrogram', 'oww-embedding'];
  return [];
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** An RGB canvas [3, h, w] in [0, 1]. */
class Canvas {
  readonly data: Float32Array;
  constructor(
    readonly h: number,
    readonly w: number,
  ) {
    this.data = new Float32Array(3 * h * w);
  }
  /** Paints pixels where `inside(y, x)` with `rgb` at opacity `alpha`. */
  paint(y0: number, y1: number, x0: number, x1: number, rgb: number[], inside: (y: number, x: number) => boolean, alpha = 1): void {
    const { h, w } = this;
    for (let y = Math.max(0, Math.floor(y0)); y < Math.min(h, Math.ceil(y1)); y++) {
      for (let x = Math.max(0, Math.floor(x0)); x < Math.min(w, Math.ceil(x1)); x++) {
        if (!inside(y, x)) continue;
        for (let c = 0; c < 3; c++) {
          const i = c * h * w + y * w + x;
          this.data[i] = this.data[i] * (1 - alpha) + rgb[c] * alpha;
        }
      }
    }
  }
  /** A line segment of the given thickness (distance test). */
  stroke(ya: number, xa: number, yb: number, xb: number, thickness: number, rgb: number[]): void {
    const dy = yb - ya;
    const dx = xb - xa;
    const len2 = dy * dy + dx * dx || 1;
    const r = thickness / 2;
    this.paint(Math.min(ya, yb) - r, Math.max(ya, yb) + r + 1, Math.min(xa, xb) - r, Math.max(xa, xb) + r + 1, rgb, (y, x) => {
      const t = Math.max(0, Math.min(1, ((y - ya) * dy + (x - xa) * dx) / len2));
      const py = ya + t * dy - y;
      const px = xa + t * dx - x;
      return py * py + px * px <= r * r;
    });
  }
  fillVerticalGradient(top: number[], bottom: number[]): void {
    for (let y = 0; y < this.h; y++) {
      const t = y / Math.max(1, this.h - 1);
      for (let c = 0; c < 3; c++) this.data.fill(top[c] * (1 - t) + bottom[c] * t, c * this.h * this.w + y * this.w, c * this.h * this.w + (y + 1) * this.w);
    }
  }
  addNoise(rng: Rng, sigma: number): void {
    for (let i = 0; i < this.data.length; i++) this.data[i] = clamp01(this.data[i] + rng.normal(0, sigma));
  }
  /** The image turned 180 degrees (rows and columns reversed). */
  rotated180(): Float32Array {
    const out = new Float32Array(this.data.length);
    const plane = this.h * this.w;
    for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = this.data[c * plane + plane - 1 - i];
    return out;
  }
}

/** A glyph: two to `maxExtra` + 2 strokes inside a box (size px at top-left y, x). */
function drawGlyph(canvas: Canvas, rng: Rng, y: number, x: number, height: number, width: number, ink: number[], thickness: number, maxExtra: number): void {
  const strokes = 2 + rng.int(maxExtra + 1);
  const point = () => [y + rng.uniform(0, height), x + rng.uniform(0, width)];
  for (let s = 0; s < strokes; s++) {
    const [ya, xa] = point();
    // Mostly horizontal and vertical strokes, as in printed characters.
    const kind = rng.int(3);
    const [yb, xb] = kind === 0 ? [ya, x + rng.uniform(0, width)] : kind === 1 ? [y + rng.uniform(0, height), xa] : point();
    canvas.stroke(ya, xa, yb, xb, thickness, ink);
  }
}

/** A line of glyphs from x0 to at most x1 with glyph height gh on baseline top y (up to 2 + maxExtra strokes a glyph). */
function drawTextLine(canvas: Canvas, rng: Rng, y: number, x0: number, x1: number, gh: number, ink: number[], maxExtra = 2): void {
  const thickness = Math.max(1, gh * rng.uniform(0.08, 0.14));
  let x = x0;
  while (x + gh * 0.6 < x1) {
    const gw = gh * rng.uniform(0.5, 0.9);
    drawGlyph(canvas, rng, y, x, gh, gw, ink, thickness, maxExtra);
    x += gw + gh * rng.uniform(0.1, 0.25) + (rng.uniform(0, 1) < 0.15 ? gh * 0.6 : 0); // letter gap, sometimes a word gap
  }
}

const paper = (rng: Rng) => [0.85 + rng.uniform(0, 0.15), 0.85 + rng.uniform(0, 0.13), 0.8 + rng.uniform(0, 0.15)];
const inkColour = (rng: Rng) => {
  const v = rng.uniform(0, 0.3);
  return [v, v + rng.uniform(0, 0.05), v + rng.uniform(0, 0.1)];
};

/**
 * A Latin-like letter in a box of line height lh at (y, x): an x-height body between the mean line
 * and the baseline (a bowl, a stem or an arch), with an ascender (35 %) or a descender (10 %) stem,
 * as lower-case print has; returns its width. Orientation shows in where ascenders and the baseline sit.
 */
function drawLetter(canvas: Canvas, rng: Rng, y: number, x: number, lh: number, ink: number[], thickness: number): number {
  const top = y + lh * 0.12;
  const mean = y + lh * 0.4;
  const base = y + lh * 0.75;
  const bottom = y + lh * 0.95;
  const w = (base - mean) * rng.uniform(0.7, 1.1);
  const shape = rng.int(3);
  if (shape === 0) {
    // bowl: an ellipse outline
    const cy = (mean + base) / 2;
    const cx = x + w / 2;
    const ry = (base - mean) / 2;
    const rx = w / 2;
    const inner = (r: number, t: number) => Math.max(0, r - t);
    canvas.paint(mean - 1, base + 1, x - 1, x + w + 1, ink, (py, px) => {
      const o = ((py - cy) / ry) ** 2 + ((px - cx) / rx) ** 2;
      const i = ((py - cy) / inner(ry, thickness)) ** 2 + ((px - cx) / inner(rx, thickness)) ** 2;
      return o <= 1 && i >= 1;
    });
  } else if (shape === 1) {
    canvas.stroke(mean, x + w / 2, base, x + w / 2, thickness, ink); // stem (i, l)
    if (rng.uniform(0, 1) < 0.4) canvas.stroke(top + lh * 0.05, x + w / 2, top + lh * 0.05, x + w / 2, thickness * 1.2, ink); // dot
  } else {
    canvas.stroke(mean, x, base, x, thickness, ink); // arch (n, h, m)
    canvas.stroke(mean, x, mean, x + w, thickness, ink);
    canvas.stroke(mean, x + w, base, x + w, thickness, ink);
  }
  const r = rng.uniform(0, 1);
  if (r < 0.35) canvas.stroke(top, shape === 2 ? x : x + w, base, shape === 2 ? x : x + w, thickness, ink); // ascender (b, d, h, k, l, t)
  else if (r < 0.45) canvas.stroke(mean, x, bottom, x, thickness, ink); // descender (p, q, g, y)
  return w;
}

/**
 * A text-line crop as PaddleOCR's classifier sees one: words of Latin-like letters on paper, the
 * crop (width 2 to 4 heights) resized to height h, turned 180 degrees for half of the samples,
 * normalised, and padded on the right with zeros up to width w.
 */
function textLine(rng: Rng, h: number, w: number): { image: Float32Array; rotated: boolean } {
  const cropWidth = Math.min(w, Math.round(h * rng.uniform(2, 4)));
  const c = new Canvas(h, cropWidth);
  c.fillVerticalGradient(paper(rng), paper(rng));
  const lh = h * rng.uniform(0.85, 1);
  const y = (h - lh) / 2;
  const ink = inkColour(rng);
  const thickness = Math.max(1.5, lh * rng.uniform(0.05, 0.09));
  let x = rng.uniform(1, 4);
  while (x < cropWidth - lh * 0.4) {
    x += drawLetter(c, rng, y, x, lh, ink, thickness) + lh * rng.uniform(0.08, 0.15);
    if (rng.uniform(0, 1) < 0.18) x += lh * 0.35; // word gap
  }
  c.addNoise(rng, 0.02);
  const rotated = rng.uniform(0, 1) < 0.5;
  const crop = rotated ? c.rotated180() : c.data;
  const out = new Float32Array(3 * h * w);
  for (let ch = 0; ch < 3; ch++) {
    for (let yy = 0; yy < h; yy++) {
      for (let xx = 0; xx < cropWidth; xx++) out[ch * h * w + yy * w + xx] = (crop[ch * h * cropWidth + yy * cropWidth + xx] - 0.5) / 0.5;
    }
  }
  return { image: out, rotated };
}

const imagenetMean = [0.485, 0.456, 0.406];
const imagenetStd = [0.229, 0.224, 0.225];

function documentPage(rng: Rng, h: number, w: number): Float32Array {
  const c = new Canvas(h, w);
  c.fillVerticalGradient(paper(rng), paper(rng));
  // A shaded box or two (figures, stamps), then lines of text.
  for (let k = rng.int(3); k > 0; k--) {
    const y = rng.uniform(0, h);
    const x = rng.uniform(0, w);
    const tone = rng.uniform(0.5, 0.9);
    c.paint(y, y + rng.uniform(h * 0.1, h * 0.3), x, x + rng.uniform(w * 0.1, w * 0.4), [tone, tone * rng.uniform(0.9, 1), tone], () => true, 0.6);
  }
  let y = rng.uniform(2, h * 0.1);
  while (y < h * 0.92) {
    const gh = rng.uniform(h * 0.04, h * 0.1);
    if (y + gh > h) break;
    const x0 = rng.uniform(2, w * 0.3);
    drawTextLine(c, rng, y, x0, Math.min(w - 2, x0 + rng.uniform(w * 0.2, w * 0.7)), gh, inkColour(rng));
    y += gh * rng.uniform(1.4, 2.4);
  }
  c.addNoise(rng, 0.02);
  const plane = h * w;
  return c.data.map((v, i) => {
    const ch = Math.floor(i / plane);
    return (v - imagenetMean[ch]) / imagenetStd[ch];
  });
}

function scene(rng: Rng, h: number, w: number): Float32Array {
  const c = new Canvas(h, w);
  const sky = [rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.85), rng.uniform(0.7, 1)];
  const ground = [rng.uniform(0.2, 0.5), rng.uniform(0.25, 0.5), rng.uniform(0.1, 0.35)];
  c.fillVerticalGradient(sky, ground);
  for (let k = 2 + rng.int(6); k > 0; k--) {
    const skin = rng.uniform(0, 1) < 0.6;
    const rgb = skin ? [rng.uniform(0.6, 0.95), rng.uniform(0.4, 0.75), rng.uniform(0.3, 0.6)] : [rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)];
    const cy = rng.uniform(0, h);
    const cx = rng.uniform(0, w);
    const ry = rng.uniform(h * 0.04, h * 0.25);
    const rx = rng.uniform(w * 0.03, w * 0.2);
    if (rng.uniform(0, 1) < 0.7) c.paint(cy - ry, cy + ry, cx - rx, cx + rx, rgb, (y, x) => ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1);
    else c.paint(cy - ry, cy + ry, cx - rx, cx + rx, rgb, () => true);
  }
  c.addNoise(rng, 0.04);
  return c.data;
}

/** One to four harmonic notes with envelopes, 22.05 kHz, peak 0.5. */
function music(rng: Rng, samples: number): Float32Array {
  const rate = 22050;
  const out = new Float32Array(samples);
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const midi = 36 + rng.int(49);
    const f0 = 440 * 2 ** ((midi - 69) / 12);
    const start = rng.int(Math.floor(samples * 0.6));
    const length = Math.floor(rng.uniform(0.3, 1.5) * rate);
    const harmonics = Math.min(12, Math.floor(rate / 2 / f0));
    const amps = Array.from({ length: harmonics }, (_, k) => rng.uniform(0.3, 1) / (k + 1));
    const decay = rng.uniform(1.5, 6);
    for (let i = start; i < Math.min(samples, start + length); i++) {
      const t = (i - start) / rate;
      const env = Math.min(1, t / 0.01) * Math.exp(-decay * t);
      let v = 0;
      for (let k = 0; k < harmonics; k++) v += amps[k] * Math.sin(2 * Math.PI * f0 * (k + 1) * t);
      out[i] += env * v;
    }
  }
  let peak = 1e-6;
  for (let i = 0; i < samples; i++) {
    out[i] += rng.normal(0, 0.003);
    peak = Math.max(peak, Math.abs(out[i]));
  }
  return out.map((v) => (0.5 * v) / peak);
}

/** Speech-like 16 kHz audio as int16-scaled floats: voiced syllables (moving formants), fricatives, pauses. */
function speechLike(rng: Rng, samples: number): Float32Array {
  const rate = 16000;
  const out = new Float32Array(samples);
  let i = rng.int(1600);
  while (i < samples) {
    const kind = rng.uniform(0, 1);
    const length = Math.floor(rng.uniform(0.08, 0.3) * rate);
    if (kind < 0.6) {
      // Voiced: harmonics of a drifting f0 weighted by three formants moving from one vowel to another.
      const f0a = rng.uniform(90, 240);
      const f0b = f0a * rng.uniform(0.8, 1.25);
      const formants = [0, 1, 2].map((k) => [rng.uniform(300, 900) * (k + 1), rng.uniform(300, 900) * (k + 1)]);
      let phase = 0;
      for (let j = 0; j < length && i + j < samples; j++) {
        const t = j / length;
        const f0 = f0a + (f0b - f0a) * t;
        phase += (2 * Math.PI * f0) / rate;
        let v = 0;
        for (let k = 1; k * f0 < 4000; k++) {
          const f = k * f0;
          let gain = 0;
          for (const [fa, fb] of formants) gain += Math.exp(-(((f - (fa + (fb - fa) * t)) / 120) ** 2));
          v += gain * Math.sin(k * phase);
        }
        out[i + j] += v * Math.sin(Math.PI * t) * 3000;
      }
    } else if (kind < 0.8) {
      for (let j = 0; j < length && i + j < samples; j++) out[i + j] += rng.normal(0, 800) * Math.sin((Math.PI * j) / length); // fricative
    }
    i += length + Math.floor(rng.uniform(0, 0.1) * rate); // pause
  }
  for (let k = 0; k < samples; k++) out[k] = Math.max(-32768, Math.min(32767, out[k] + rng.normal(0, 30)));
  return out;
}

/** openWakeWord's features: mel frames [frames, 32] of a clip (x / 10 + 2, as openWakeWord scales them). */
async function melFrames(session: ModelSession, audio: Float32Array): Promise<{ data: Float32Array; frames: number }> {
  const out = (await session.run({ [session.inputNames[0]]: { data: audio, dims: [1, audio.length] } }))[session.outputNames[0]];
  const frames = out.data.length / 32;
  return { data: out.data.map((v) => v / 10 + 2), frames };
}

const hopSamples = 160; // 10 ms at 16 kHz
const windowFrames = 76;
const embeddingHop = 8;

/**
 * `count` samples of a generator, [count, ...sampleShape] row-major, and the labels the generator
 * knows (text-line: 0 upright, 1 turned 180 degrees, PaddleOCR's class order; else null).
 * Deterministic for a seed (sample i uses its own stream, so a prefix of a bigger set equals a
 * smaller one).
 */
export async function generateInputs(generator: Generator, sampleShape: number[], count: number, seed: number): Promise<{ inputs: Float32Array; labels: Int32Array | null }> {
  const per = sampleShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count * per);
  const labels = new Int32Array(count);
  const rngFor = (i: number) => new Rng(seed * 1_000_003 + i);
  if (generator === 'speech-mel' || generator === 'speech-embeddings') {
    const mel = await ModelSession.create(await corpusBytes('oww-melspectrogram'), { what: 'oww-melspectrogram' });
    const embed = generator === 'speech-embeddings' ? await ModelSession.create(await corpusBytes('oww-embedding'), { what: 'oww-embedding' }) : null;
    try {
      for (let i = 0; i < count; i++) {
        const steps = embed ? sampleShape[0] : 1;
        const frames = windowFrames + (steps - 1) * embeddingHop;
        const { data } = await melFrames(mel, speechLike(rngFor(i), (frames + 3) * hopSamples));
        if (!embed) {
          out.set(data.subarray(0, windowFrames * 32), i * per);
          continue;
        }
        const windows = new Float32Array(steps * windowFrames * 32);
        for (let s = 0; s < steps; s++) windows.set(data.subarray(s * embeddingHop * 32, (s * embeddingHop + windowFrames) * 32), s * windowFrames * 32);
        const e = (await embed.run({ [embed.inputNames[0]]: { data: windows, dims: [steps, windowFrames, 32, 1] } }))[embed.outputNames[0]];
        out.set(e.data, i * per);
      }
    } finally {
      await mel.release();
      await embed?.release();
    }
    return { inputs: out, labels: null };
  }
  for (let i = 0; i < count; i++) {
    const rng = rngFor(i);
    const [, h, w] = sampleShape;
    if (generator === 'text-line') {
      const line = textLine(rng, h, w);
      out.set(line.image, i * per);
      labels[i] = line.rotated ? 1 : 0;
      continue;
    }
    out.set(generator === 'document' ? documentPage(rng, h, w) : generator === 'scene' ? scene(rng, h, w) : music(rng, sampleShape[0]), i * per);
  }
  return { inputs: out, labels: generator === 'text-line' ? labels : null };
}

export interface DataCounts {
  calib: number;
  val: number;
  test?: number;
}

/**
 * A data folder for a corpus model under the corpus cache (calib/val/test-inputs.npy; the
 * generator's labels too with `labels`, else fidelity mode), made once per (model, shape, counts,
 * labels); returns its path. Splits use different seeds.
 */
export async function ensureCorpusData(
  model: Pick<CorpusModel, 'name' | 'inputs'>,
  counts: DataCounts,
  { sampleShape = model.inputs.sampleShape, labels = false }: { sampleShape?: number[]; labels?: boolean } = {},
): Promise<string> {
  const dir = join(corpusDir(), 'data', `${model.name}-${sampleShape.join('x')}-${counts.calib}-${counts.val}-${counts.test ?? 0}${labels ? '-labels' : ''}`);
  const splits: Array<[string, number, number]> = [['calib', counts.calib, 1], ['val', counts.val, 2], ['test', counts.test ?? 0, 3]];
  if (splits.every(([s, n]) => n === 0 || existsSync(join(dir, `${s}-inputs.npy`)))) return dir;
  await mkdir(dir, { recursive: true });
  for (const [split, n, seed] of splits) {
    if (n === 0) continue;
    const generated = await generateInputs(model.inputs.generator, sampleShape, n, seed);
    const write = async (file: string, bytes: Uint8Array) => {
      await writeFile(`${file}.part`, bytes);
      await rename(`${file}.part`, file);
    };
    if (labels && generated.labels) await write(join(dir, `${split}-labels.npy`), encodeNpy({ data: generated.labels, shape: [n] }));
    await write(join(dir, `${split}-inputs.npy`), encodeNpy({ data: generated.inputs, shape: [n, ...sampleShape] }));
  }
  return dir;
}
