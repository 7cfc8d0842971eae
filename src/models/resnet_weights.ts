/**
 * `mx.models.resnet18/34/50(options)`: a ResNet, with pretrained weights when `weights` names them.
 *
 *   const model = await mx.models.resnet18({ weights: 'IMAGENET1K_V1' });        // torchvision's file
 *   const tuned = await mx.models.resnet18({ weights: 'IMAGENET1K_V1', numClasses: 10 }); // new head
 *   const mine  = await mx.models.resnet50({ weights: 'finetuned.pth' });          // or .safetensors
 *
 * Named weights are torchvision's published files (the same URLs and file names,
 * `resnet18-f37072fd.pth`), downloaded as torch.hub does into `$MIXPREC_HOME/checkpoints/`
 * (MIXPREC_HOME defaults to ~/.cache/mixprec) with a progress bar on a terminal; the hex digits after
 * the last '-' of the file name must begin the file's sha256, or the download is refused and nothing
 * is kept; a file already in the cache is used as it is (no network). Offline, the error names the URL
 * and the path where the file can be put by hand. MIXPREC_WEIGHTS_URL replaces the base URL
 * (https://download.pytorch.org/models/) for a mirror, or the tests' local server.
 *
 * `numClasses` other than the weights' (1000 for ImageNet) keeps the backbone and gives the model a
 * freshly initialised classifier (fine-tuning), where torchvision would refuse; by default the
 * model takes the weights' class count. The factories are async because weights may need a download.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { downloadFile, type ProgressCallback } from '../data/download.js';
import { loadTorch } from '../io/torch/index.js';
import { loadSafetensors } from '../io/checkpoint.js';
import { createResNet, ResNet, type ResNetName, type ResNetOptions } from './resnet.js';

export const TORCHVISION_MODELS_URL = 'https://download.pytorch.org/models/';

/** torchvision's published ImageNet weights: file names under TORCHVISION_MODELS_URL (torchvision 0.14). */
export const RESNET_WEIGHTS: Readonly<Record<ResNetName, Readonly<Record<string, string>>>> = {
  resnet18: { IMAGENET1K_V1: 'resnet18-f37072fd.pth', DEFAULT: 'resnet18-f37072fd.pth' },
  resnet34: { IMAGENET1K_V1: 'resnet34-b627a593.pth', DEFAULT: 'resnet34-b627a593.pth' },
  resnet50: { IMAGENET1K_V1: 'resnet50-0676ba61.pth', IMAGENET1K_V2: 'resnet50-11ad3fa6.pth', DEFAULT: 'resnet50-11ad3fa6.pth' },
};
const IMAGENET_CLASSES = 1000;

/** `$MIXPREC_HOME`, else ~/.cache/mixprec: where downloaded weights are kept. */
export function mixprecHome(): string {
  return process.env['MIXPREC_HOME'] || join(homedir(), '.cache', 'mixprec');
}

function weightsBaseUrl(): string {
  const base = process.env['MIXPREC_WEIGHTS_URL'] || TORCHVISION_MODELS_URL;
  return base.endsWith('/') ? base : `${base}/`;
}

const HASH_IN_NAME = /-([a-f0-9]*)\./;

export interface DownloadWeightsOptions {
  /** Where the file is kept (default `$MIXPREC_HOME/checkpoints`). */
  modelDir?: string;
  /** Check that the hex digits after '-' in the file name begin its sha256 (default true). */
  checkHash?: boolean;
  /** A progress bar on a terminal (default true), none (false), or a callback (bytes received, total). */
  progress?: boolean | ProgressCallback;
  /** The cached file's name (default the URL's last part). */
  fileName?: string;
}

/**
 * torch.hub's download_url_to_file + cache: the path of `url`'s file in the cache, downloaded first
 * when missing (hash-checked). Offline, one line naming the URL and the path to place it at.
 */
export async function downloadWeights(url: string, options: DownloadWeightsOptions = {}): Promise<string> {
  const name = options.fileName ?? basename(new URL(url).pathname);
  const dest = join(options.modelDir ?? join(mixprecHome(), 'checkpoints'), name);
  if (existsSync(dest) && statSync(dest).isFile()) return dest;
  const prefix = options.checkHash ?? true ? HASH_IN_NAME.exec(name)?.[1] : undefined;
  try {
    await downloadFile(url, dest, { progress: options.progress ?? true, sha256Prefix: prefix || null });
  } catch (e) {
    const message = (e as Error).message;
    if (/invalid hash value|md5 mismatch/.test(message)) throw e;
    throw new Error(`could not download ${url} (${message.replace(/^download: (GET \S+ failed: )?/, '')}); offline, place the file by hand at ${dest}`, { cause: e });
  }
  return dest;
}

/** torch.hub.load_state_dict_from_url: download (cached, hash-checked) and read with mx.io.loadTorch. */
export async function loadStateDictFromUrl(url: string, options: DownloadWeightsOptions = {}): Promise<any> {
  return loadTorch(await downloadWeights(url, options));
}

export interface ResNetFactoryOptions extends ResNetOptions {
  /** A weights name of this network ('IMAGENET1K_V1', 'DEFAULT', ...) or a .pth / .pt / .safetensors file. */
  weights?: string | null;
  /** Download progress (see DownloadWeightsOptions.progress). */
  progress?: boolean | ProgressCallback;
}

async function readWeights(net: ResNetName, weights: string, options: ResNetFactoryOptions): Promise<{ dict: Record<string, unknown> | Map<string, Tensor>; source: string }> {
  const named = RESNET_WEIGHTS[net][weights];
  if (named !== undefined) {
    if ((options.width ?? 64) !== 64 || (options.stem ?? 'imagenet') !== 'imagenet' || (options.inChannels ?? 3) !== 3) {
      throw new RangeError(`${net}: the ${weights} weights are for torchvision's ${net} (width 64, imagenet stem, 3 input channels)`);
    }
    const url = weightsBaseUrl() + named;
    return { dict: await loadStateDictFromUrl(url, { progress: options.progress }), source: named };
  }
  if (!existsSync(weights)) {
    throw new RangeError(`${net}: weights '${weights}' is neither a weights name of ${net} (${Object.keys(RESNET_WEIGHTS[net]).join(', ')}) nor an existing file (.pth, .pt, .safetensors)`);
  }
  if (weights.endsWith('.safetensors')) return { dict: (await loadSafetensors(weights)).tensors, source: weights };
  return { dict: await loadTorch(weights), source: weights };
}

function entriesOf(dict: Record<string, unknown> | Map<string, Tensor>): [string, unknown][] {
  return dict instanceof Map ? [...dict.entries()] : Object.entries(dict);
}

async function build(net: ResNetName, options: ResNetFactoryOptions): Promise<ResNet> {
  const { weights, progress: _progress, ...modelOptions } = options;
  if (weights === undefined || weights === null) return createResNet(net, modelOptions);
  if (typeof weights !== 'string' || weights === '') throw new TypeError(`${net}: weights must be a weights name or a file path, got ${JSON.stringify(weights)}`);
  const { dict, source } = await readWeights(net, weights, options);
  const entries = entriesOf(dict);
  try {
    const fcWeight = entries.find(([k]) => k === 'fc.weight')?.[1];
    const fileClasses = fcWeight instanceof Tensor && fcWeight.ndim === 2 ? fcWeight.shape[0]! : IMAGENET_CLASSES;
    const numClasses = modelOptions.numClasses ?? fileClasses;
    const model = createResNet(net, { ...modelOptions, numClasses });
    if (numClasses === fileClasses) {
      model.loadStateDict(dict, { allowDtypeCast: true });
      return model;
    }
    // A new head: everything but fc must match.
    const backbone = new Map(entries.filter(([k]) => !k.startsWith('fc.')) as [string, Tensor][]);
    const { missingKeys, unexpectedKeys } = model.loadStateDict(backbone, { strict: false, allowDtypeCast: true });
    const missing = missingKeys.filter((k) => !k.startsWith('fc.'));
    if (missing.length || unexpectedKeys.length) {
      throw new Error(`${net}: ${source} does not match ${net}'s backbone: ${[missing.length ? `missing ${someOf(missing)}` : '', unexpectedKeys.length ? `unexpected ${someOf(unexpectedKeys)}` : ''].filter(Boolean).join('; ')}`);
    }
    return model;
  } finally {
    // loadStateDict copied the values: the file's tensors are not needed any more.
    for (const [, v] of entries) if (v instanceof Tensor && !v.storage.disposed) v.dispose();
  }
}

/** ResNet-18 (torchvision's), optionally with pretrained weights. */
export function resnet18(options: ResNetFactoryOptions = {}): Promise<ResNet> {
  return build('resnet18', options);
}

/** ResNet-34 (torchvision's), optionally with pretrained weights. */
export function resnet34(options: ResNetFactoryOptions = {}): Promise<ResNet> {
  return build('resnet34', options);
}

/** ResNet-50 (torchvision's V1.5), optionally with pretrained weights. */
export function resnet50(options: ResNetFactoryOptions = {}): Promise<ResNet> {
  return build('resnet50', options);
}

/** A key list for a one-line error: the first few names and how many more (a wrong file can have hundreds). */
function someOf(keys: readonly string[], shown = 6): string {
  return keys.length <= shown ? keys.join(', ') : `${keys.slice(0, shown).join(', ')} and ${keys.length - shown} more`;
}
