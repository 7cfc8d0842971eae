/** mx.nn.parallel: data parallelism over mx.distributed. */
export {
  DistributedDataParallel, type DistributedDataParallelOptions, type GradientCompression, type ReducerStats,
} from './distributed.js';
