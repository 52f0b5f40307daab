/** Native bindings in order of preference; both are optional dependencies that this machine cannot install. */
export const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

/** The first native binding installed, found without loading it (nor TensorFlow.js). */
export function installedNativeBinding(): string | undefined {
  for (const pkg of NATIVE_PACKAGES) {
    try {
      require.resolve(pkg);
      return pkg;
    } catch {
      // not installed: the next one
    }
  }
  return undefined;
}
