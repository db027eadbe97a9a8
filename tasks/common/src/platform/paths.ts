/**
 * Whether a path lies inside a folder, on every platform. `target.startsWith(root + sep)` is wrong twice on
 * Windows: a drive root (`E:\`) already ends in the separator, so every path was rejected, and drive letters and
 * names compare case-insensitively. `path.relative` knows both (`path.win32` compares case-insensitively).
 */
import * as path from 'path';

/** True when `target` is `root` itself (only with `orSelf`) or below it. Both are resolved first. */
export function isInside(root: string, target: string, options: { orSelf?: boolean; paths?: path.PlatformPath } = {}): boolean {
  const p = options.paths ?? path;
  const rel = p.relative(p.resolve(root), p.resolve(target));
  if (rel === '') return options.orSelf === true;
  return rel !== '..' && !rel.startsWith(`..${p.sep}`) && !p.isAbsolute(rel);
}
