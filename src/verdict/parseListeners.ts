/** A TCP socket in LISTEN state inside the container's network namespace. */
export interface Listener {
  address: string;
  port: number;
}

/**
 * Parses /proc/net/tcp and /proc/net/tcp6 text (concatenated) into listening sockets.
 * Addresses are hex in host (little-endian) byte order per 32-bit word.
 */
export function parseProcNetTcp(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== '0A') continue; // 0A = LISTEN
    const [hexAddress, hexPort] = (fields[1] ?? '').split(':');
    if (!hexAddress || !hexPort) continue;
    const port = parseInt(hexPort, 16);
    const address = hexAddress.length === 8 ? ipv4(hexAddress) : hexAddress.length === 32 ? ipv6(hexAddress) : undefined;
    if (address !== undefined && !out.some((l) => l.address === address && l.port === port)) out.push({ address, port });
  }
  return out;
}

function ipv4(hex: string): string {
  const bytes = hex.match(/../g)!.map((b) => parseInt(b, 16));
  return bytes.reverse().join('.');
}

function ipv6(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
  const full = words.join('');
  if (/^0{20}ffff/i.test(full)) return `::ffff:${ipv4(words[3]!.match(/../g)!.reverse().join(''))}`;
  const groups = full.match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16));
  const joined = groups.join(':');
  if (joined === '0:0:0:0:0:0:0:0') return '::';
  if (joined === '0:0:0:0:0:0:0:1') return '::1';
  return joined;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}
