declare module 'crc-32/crc32c.js' {
  /** CRC-32C (Castagnoli) of a buffer, as a signed 32-bit integer. */
  export function buf(data: Uint8Array, seed?: number): number;
}
