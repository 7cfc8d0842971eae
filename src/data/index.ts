/**
 * mx.data: datasets, the DataLoader and image transforms.
 *
 *   const T = mx.data.transforms;
 *   const { train, test } = await mx.data.CIFAR10.loadSplits('data', {
 *     download: true,
 *     trainTransform: new T.Compose([new T.RandomCrop(32, { padding: 4 }), new T.RandomHorizontalFlip(), new T.ToTensor(), new T.Normalize(mean, std)]),
 *     testTransform: new T.Compose([new T.ToTensor(), new T.Normalize(mean, std)]),
 *   });
 *   const loader = new mx.data.DataLoader(train, { batchSize: 128, shuffle: true, dropLast: true });
 *   for await (const [x, y] of loader) mx.scope(() => step(x, y)); // x float32 [128, 3, 32, 32], y int32 [128]
 */
export * as transforms from './transforms.js';
export {
  Compose, Lambda, ToTensor, Normalize, Resize, RandomCrop, RandomHorizontalFlip, RandomVerticalFlip, ImageTransform,
  type Transform, type BatchTransform, type TransformLike, type RandomCropOptions, type PaddingMode,
} from './transforms.js';
export type { Image, ImageBatch, ImageLayout, ImageArray } from './image.js';
export {
  ImageArrayDataset, TensorDataset, Subset,
  type Dataset, type SampleContext, type ImageArrayDatasetOptions,
} from './dataset.js';
export { defaultCollate, imageBatchToTensor } from './collate.js';
export {
  DataLoader, epochPermutation, batchGenerator, hashSeed, type DataLoaderOptions, type DataLoaderState,
} from './dataloader.js';
export {
  CIFAR10, readCIFAR10, CIFAR10_URL, CIFAR10_MD5, CIFAR10_CLASSES,
  type CIFAR10Options, type CIFAR10SplitsOptions, type CIFAR10SourceOptions,
} from './cifar10.js';
export { MNIST, parseIdx, MNIST_CLASSES, type MNISTOptions } from './mnist.js';
export { ImageFolder, decodeImage, loadImage, IMAGE_EXTENSIONS, type ImageFolderOptions } from './image_folder.js';
export { downloadFile, md5File, type DownloadOptions, type ProgressCallback } from './download.js';
export { readTar, writeTar, type TarHeader, type TarEntry } from './tar.js';
export { DistributedSampler, type Sampler, type DistributedSamplerOptions } from './sampler.js';
export { CharCorpus, CharSequence, CharVocab } from './text.js';
