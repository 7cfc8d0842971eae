/** mx.dtypes: dtype value objects, finfo and promotion. */
export { float32, float16, bfloat16, float64, int32, bool, dtypeOf, promoteTypes, ALL_DTYPES, DType } from './dtype/dtype.js';
export { finfoOf as finfo } from './dtype/dtype.js';
export { resultType, type PromotionOperand } from './dtype/dtype.js';
