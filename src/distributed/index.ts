/** mx.distributed: torch.distributed's process group and collectives, in camelCase, on Gloo (docs/distributed.md). */
export {
  initProcessGroup, destroyProcessGroup, getRank, getWorldSize, isInitialized, DEFAULT_TIMEOUT_MS,
  type InitProcessGroupOptions,
} from './process_group.js';
export { allReduce, broadcast, allGather, reduceScatter, barrier, type ReduceOp, type ReduceOptions } from './collectives.js';
export { isAvailable, unavailableReason, DistributedUnavailableError } from './native.js';
