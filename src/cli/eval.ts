/** `mixprec eval`: the accuracy and per-class accuracy of a `mixprec train` checkpoint. */
import { initDefaultBackend, setBackend } from '../backend/registry.js';
import { CLASSIFIER_MODELS, createModel, type ClassifierModelName, type ResNetStem } from '../models/index.js';
import { DataLoader } from '../data/dataloader.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import { evaluate, PRECISIONS, type Precision } from '../train/classifier.js';
import { choice, parseFlags } from './args.js';
import { CliError, usage } from './errors.js';
import { resolveData, DATASETS, type DatasetName } from './datasets.js';
import { evalBatchSize, type Output } from './train.js';

export const EVAL_HELP = `usage: mixprec eval --checkpoint FILE.safetensors [--dataset NAME] [--data PATH] [--precision P]

Prints the test accuracy and the accuracy of every class of a checkpoint written by mixprec train.
  --dataset and --data default to what the checkpoint was trained on; --precision to fp32.
`;

const FLAGS = {
  checkpoint: { type: 'string' },
  dataset: { type: 'string' },
  data: { type: 'string' },
  backend: { type: 'string' },
  precision: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface TrainMeta {
  kind?: string;
  /** Absent in checkpoints written before widecnn existed: lenet. */
  model?: ClassifierModelName;
  /** widecnn, resnets: the channel width. */
  width?: number;
  /** resnets: the stem. */
  stem?: ResNetStem;
  /** How the images were normalised (absent in older checkpoints: the dataset's statistics). */
  normalize?: 'dataset' | 'imagenet';
  /** The side images were resized to, when the run resized them (--image-size, --pretrained). */
  resize?: number;
  dataset: DatasetName;
  channels: number;
  imageSize: number;
  classes: readonly string[];
  args?: { data?: string };
}

export async function runEval(argv: string[], out: Output): Promise<number> {
  const v = parseFlags('eval', argv, FLAGS);
  if (v['help']) {
    out.log(EVAL_HELP.trimEnd());
    return 0;
  }
  const path = v['checkpoint'] as string | undefined;
  if (!path) throw usage('mixprec eval: --checkpoint FILE.safetensors is required');
  const precision: Precision = choice('eval', 'precision', v['precision'], PRECISIONS, 'fp32');
  await (v['backend'] ? setBackend(v['backend'] as string) : initDefaultBackend());

  const { meta } = await loadCheckpoint<TrainMeta>(path);
  if (!meta || meta.kind !== 'mixprec.train') throw new CliError(`${path}: not a mixprec train checkpoint (no training state in its metadata)`);
  const dataset = choice('eval', 'dataset', v['dataset'], DATASETS, meta.dataset);
  const data = await resolveData({
    dataset,
    data: (v['data'] as string | undefined) ?? meta.args?.data,
    download: false,
    augment: false,
    progress: false,
    notice: (line) => out.log(line),
    // As trained: resized to the checkpoint's image size, normalised the same way.
    preprocess: { imageSize: meta.resize, normalize: meta.normalize ?? 'dataset' },
  });
  if (data.channels !== meta.channels || data.imageSize !== meta.imageSize) {
    throw new CliError(`${path}: trained on ${meta.channels}x${meta.imageSize}x${meta.imageSize} images, ${dataset} has ${data.channels}x${data.imageSize}x${data.imageSize}`);
  }
  const modelName = meta.model ?? 'lenet';
  if (!(CLASSIFIER_MODELS as readonly string[]).includes(modelName)) throw new CliError(`${path}: written for model '${modelName}', which mixprec eval cannot build (models: ${CLASSIFIER_MODELS.join(', ')})`);
  const model = createModel(modelName, {
    inChannels: meta.channels,
    imageSize: meta.imageSize,
    numClasses: meta.classes.length || 10,
    width: meta.width,
    stem: meta.stem,
  });
  const { tensors } = await loadCheckpoint(path, { expect: model.stateDict(), target: `the ${modelName} model` });
  model.loadStateDict(tensors);
  const loader = new DataLoader(data.test as never, { batchSize: evalBatchSize(data.imageSize), shuffle: false, seed: 0 });
  const ev = await evaluate(model, loader, precision, meta.classes.length || 10);
  const names = data.classes.length ? data.classes : meta.classes;
  const width = Math.max(...names.map((n) => n.length), 5);
  out.log(`${path} on ${data.name} (${data.source}), ${ev.total} test images, precision ${precision}`);
  ev.perClass.forEach(([correct, total], c) => {
    out.log(`  ${(names[c] ?? String(c)).padEnd(width)}  ${total ? ((100 * correct) / total).toFixed(2).padStart(6) : '     -'}%  (${correct}/${total})`);
  });
  out.log(`test accuracy: ${(ev.accuracy * 100).toFixed(2)}%`);
  return 0;
}
