/** Where things live inside the job's container. Documented in the README; tests rely on it. */
export const DATA_MOUNT = '/vbe';
export const LOCAL_INPUT_DIR = '/vbe/inputs';
export const LOCAL_OUTPUT_DIR = '/vbe/output';
export const LOCAL_MODEL_DIR = '/vbe/model';
export { GCS_MOUNT } from '../spec/gcsUri.js';
