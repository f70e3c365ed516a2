/** How collectOutputs reads an output archive entry's name, and explains the host errors of one entry. */

/** Why the host refused one entry (its errno), in words. */
export function hostProblem(code: string): string {
  switch (code) {
    case 'ENAMETOOLONG':
      return 'the path is too long once joined to --output';
    case 'EISDIR':
    case 'ENOTEMPTY':
      return 'a directory is in the way';
    case 'ENOTDIR':
    case 'EEXIST':
      return 'a file is in the way of a directory, or a directory of a file';
    case 'ENOENT':
      return 'a directory in the path is gone';
    default:
      return 'the host refused the name';
  }
}

/**
 * The entry's path below the archive's first component (the output directory's own name), as
 * components without "" and "." (so `out/./.vbe/x` is checked as `.vbe/x`); undefined for an
 * absolute name.
 */
export function entryParts(name: string): string[] | undefined {
  const trimmed = name.replace(/^\.\//, '');
  const slash = trimmed.indexOf('/');
  if (slash === -1) return [];
  if (trimmed[slash + 1] === '/') return undefined;
  return trimmed
    .slice(slash + 1)
    .split('/')
    .filter((part) => part !== '' && part !== '.');
}

export function unsafeName(relative: string, parts: string[]): string | undefined {
  if (relative.includes('\0')) return 'NUL byte in name';
  if (parts.some((part) => part === '..')) return 'path climbs out with ".."';
  return undefined;
}

export function reservedName(first: string, reserved: readonly string[]): string | undefined {
  return reserved.includes(first) ? `"${first}" is reserved for the emulator's own record` : undefined;
}
