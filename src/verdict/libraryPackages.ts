/** Debian packages that provide the shared libraries ML images most often miss. */
export const LIBRARY_PACKAGES: Record<string, string> = {
  'libgomp.so.1': 'libgomp1',
  'libGL.so.1': 'libgl1',
  'libglib-2.0.so.0': 'libglib2.0-0',
  'libgthread-2.0.so.0': 'libglib2.0-0',
  'libstdc++.so.6': 'libstdc++6',
  'libsndfile.so.1': 'libsndfile1',
  'libSM.so.6': 'libsm6',
  'libXext.so.6': 'libxext6',
  'libXrender.so.1': 'libxrender1',
  'libgfortran.so.5': 'libgfortran5',
  'libopenblas.so.0': 'libopenblas0',
  'libcuda.so.1': 'the NVIDIA driver (GPU machine types only)',
};

/** How to put a missing shared library into a Debian-based image. */
export function installFix(library: string): string {
  const pkg = LIBRARY_PACKAGES[library];
  return pkg && !pkg.includes(' ')
    ? `Install it in the Dockerfile: RUN apt-get update && apt-get install -y --no-install-recommends ${pkg} && rm -rf /var/lib/apt/lists/*`
    : `Install the package that provides ${library} in the image${pkg ? ` (${pkg})` : ''}.`;
}
