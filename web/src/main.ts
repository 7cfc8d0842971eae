/**
 * The playground page: its controls, the status line, the live plots and the grid of test images
 * with predicted labels. `<body data-state>` says where it is (idle, loading, training, done,
 * error) for people and tests alike.
 */
import { runFromEvents, type RunData, type RunEvent } from '../../src/report/runs.js';
import { loadCifarArchive, loadDigits, type PlaygroundData } from './data.js';
import { LivePlots } from './plots.js';
import { startBackend, train, type BackendName, type Prediction } from './trainer.js';
import type { Precision } from '../../src/train/classifier.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const value = (id: string) => $<HTMLInputElement | HTMLSelectElement>(id).value;
const setState = (state: string) => (document.body.dataset['state'] = state);

const plots = new LivePlots($('plots'));
const runs: { name: string; events: RunEvent[] }[] = [];
let digits: Promise<PlaygroundData> | null = null;
let cifar: { file: File; data: Promise<PlaygroundData> } | null = null;
let stopRequested = false;

function say(message: string): void {
  $('message').textContent = message;
}

async function describeEnvironment(): Promise<void> {
  const isolated = globalThis.crossOriginIsolated === true;
  const parts = [`${navigator.hardwareConcurrency} cores`, isolated ? 'cross-origin isolated: wasm runs on Web Workers' : 'not cross-origin isolated: wasm runs on one thread (serve with mixprec serve)'];
  const backendSelect = $<HTMLSelectElement>('backend');
  let adapter: GPUAdapter | null = null;
  try {
    adapter = 'gpu' in navigator ? await navigator.gpu.requestAdapter() : null;
  } catch {
    adapter = null;
  }
  if (!adapter) {
    parts.push('no WebGPU adapter');
    backendSelect.querySelector<HTMLOptionElement>('option[value=webgpu]')!.disabled = true;
    backendSelect.value = 'wasm';
  } else {
    const f16 = adapter.features.has('shader-f16');
    parts.push(`WebGPU adapter: ${[adapter.info.vendor, adapter.info.architecture, adapter.info.description].filter(Boolean).join(' ')}${f16 ? ' (shader-f16)' : ' (no shader-f16)'}`);
    // Where float16 would run packed on a software adapter, WebAssembly is the faster start.
    backendSelect.value = f16 ? 'webgpu' : 'wasm';
  }
  $('environment').textContent = parts.join(' · ');
}

function dataset(): Promise<PlaygroundData> {
  if (document.querySelector<HTMLInputElement>('input[name=dataset]:checked')!.value === 'digits') {
    digits ??= loadDigits();
    digits.catch(() => (digits = null));
    return digits;
  }
  const file = $<HTMLInputElement>('cifar-file').files?.[0];
  if (!file) return Promise.reject(new Error('pick cifar-10-binary.tar.gz first'));
  if (cifar?.file !== file) {
    cifar = { file, data: loadCifarArchive(file, (f) => say(`reading ${file.name}: ${(f * 100).toFixed(0)}%`)) };
    cifar.data.catch(() => (cifar = null));
  }
  return cifar.data;
}

function drawPredictions(data: PlaygroundData, predictions: Prediction[]): void {
  const grid = $('predictions');
  grid.textContent = '';
  const { channels: c, imageSize: s } = data;
  for (const p of predictions) {
    const pixels = data.test.images.subarray(p.index * c * s * s, (p.index + 1) * c * s * s);
    const canvas = document.createElement('canvas');
    canvas.width = s;
    canvas.height = s;
    const image = new ImageData(s, s);
    for (let i = 0; i < s * s; i++) {
      for (let k = 0; k < 3; k++) image.data[i * 4 + k] = pixels[(c === 3 ? k : 0) * s * s + i]!;
      image.data[i * 4 + 3] = 255;
    }
    canvas.getContext('2d')!.putImageData(image, 0, 0);
    const cell = document.createElement('div');
    const right = p.predicted === p.label;
    cell.className = `sample ${right ? 'right' : 'wrong'}`;
    cell.dataset['label'] = data.classes[p.label]!;
    cell.dataset['predicted'] = data.classes[p.predicted]!;
    cell.title = `true: ${data.classes[p.label]}, predicted: ${data.classes[p.predicted]}`;
    const caption = document.createElement('span');
    caption.textContent = right ? data.classes[p.predicted]! : `${data.classes[p.predicted]} (${data.classes[p.label]})`;
    cell.append(canvas, caption);
    grid.append(cell);
  }
}

/** The status figures of the run being trained. */
function showStatus(run: RunData, steps: number, events: readonly RunEvent[]): void {
  const losses = run.loss['loss'] ?? [];
  const tail = losses.slice(-20);
  const last = losses.at(-1);
  $('progress').textContent = `${last?.x ?? 0} / ${steps}`;
  if (losses.length > 0) $('loss').textContent = `${losses[0]!.y.toFixed(3)} → ${(tail.reduce((a, p) => a + p.y, 0) / tail.length).toFixed(3)}`;
  const accuracy = run.evaluation?.points.at(-1);
  if (accuracy) $('accuracy').textContent = `${(accuracy.y * 100).toFixed(2)}%`;
  const tested = run.settings['test_images'];
  $('accuracy-label').textContent = `test accuracy${tested ? ` (${tested} images)` : ''}`;
  const speed = run.throughput?.points.at(-1);
  if (speed) $('throughput').textContent = Math.round(speed.y).toLocaleString('en-US');
  const scale = run.lossScale.at(-1);
  if (scale) $('scale').textContent = String(scale.y);
  $('skipped').textContent = String(events.filter((e) => e.event === 'step' && e['skipped'] === true).length);
}

async function onTrain(event: Event): Promise<void> {
  event.preventDefault();
  const trainButton = $<HTMLButtonElement>('train');
  const stopButton = $<HTMLButtonElement>('stop');
  trainButton.disabled = true;
  stopButton.disabled = false;
  stopRequested = false;
  say('');
  setState('loading');
  try {
    const data = await dataset();
    say('');
    const backendName = value('backend') as BackendName;
    const precision = value('precision') as Precision;
    const backend = await startBackend(backendName);
    $('backend-info').textContent = `backend: ${backend.name} · ${backend.detail}`;
    $('storage').textContent = `storage: ${backend.storage}`;
    const steps = Math.max(1, Math.floor(Number(value('steps'))));
    const base = `${backendName} ${precision}`;
    const name = runs.some((r) => r.name === base) ? `${base} #${runs.filter((r) => r.name.startsWith(base)).length + 1}` : base;
    const events: RunEvent[] = [];
    runs.push({ name, events });
    $('run-name').textContent = `${name} on ${data.name}`;
    for (const id of ['loss', 'accuracy', 'throughput', 'scale', 'skipped']) $(id).textContent = '–';
    setState('training');
    const allRuns = () => runs.filter((r) => r.events.some((e) => e.event === 'step')).map((r) => runFromEvents(r.events, r.name));
    let drawing: Promise<void> | null = null;
    let lastDraw = 0;
    const redraw = (force: boolean) => {
      if (drawing || (!force && performance.now() - lastDraw < 500)) return;
      lastDraw = performance.now();
      drawing = plots.render(allRuns()).finally(() => (drawing = null));
    };
    await train(
      data,
      backend,
      {
        precision,
        steps,
        batchSize: Math.max(1, Math.floor(Number(value('batch-size')))),
        optimizer: value('optimizer') as 'adam' | 'sgd',
        lr: Number(value('lr')),
        evalEvery: Math.max(1, Math.floor(Number(value('eval-every')))),
        seed: 0,
        testImages: Math.max(1, Math.floor(Number(value('test-images')))),
        gridImages: 32,
      },
      {
        event: (e) => {
          events.push(e);
          if (e.event === 'config') return;
          showStatus(runFromEvents(events, name), steps, events);
          redraw(e.event === 'eval');
        },
        predictions: (p) => drawPredictions(data, p),
        stopped: () => stopRequested,
      },
    );
    await drawing;
    await plots.render(allRuns());
    setState('done');
  } catch (e) {
    console.error(e);
    say(String((e as Error)?.message ?? e));
    setState('error');
  } finally {
    trainButton.disabled = false;
    stopButton.disabled = true;
  }
}

$('controls').addEventListener('submit', (e) => void onTrain(e));
$('stop').addEventListener('click', () => (stopRequested = true));
setState('idle');
void describeEnvironment();
