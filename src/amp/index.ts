/** mx.amp: autocast, GradScaler, float32 master weights and precision diagnostics. */
export { autocast, policy, isAutocastEnabled, getAutocastDtype, type AutocastOptions, type AutocastRegion } from './autocast.js';
export { GradScaler, SCALE_FLOOR, type GradScalerOptions, type GradScalerState, type ScalerStepEvent } from './grad_scaler.js';
export {
  precisionReport, PrecisionRecorder, type PrecisionReport, type PrecisionReportOptions, type ParameterReport, type OverflowReport, type OpDtypeReport,
} from './diagnostics.js';
export { masterWeights, type MasterWeights, type MasterWeightsModel } from './master_weights.js';
