/** The emulator's record directory inside a job's output (or prediction) directory: job.json and the logs. */
export const RECORD_DIR_NAME = '.vbe';
