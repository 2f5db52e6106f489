/**
 * The tfuq web core: everything that decides what the page says, with no UI and no runtime.
 * Masks (`splitmix64-counter` v1), aggregation, decision rules, the model file's configuration,
 * its tensors' quantization, and the photo rule `center-crop-bilinear` v1 and v2. Tested under vitest
 * on the shared vectors in `tests/vectors/` that the Python and Kotlin tests read.
 */

export * from "./aggregate";
export * from "./decision";
export * from "./masks";
export * from "./modelfile";
export * from "./photo";
export * from "./quantization";
export * from "./tflite";
