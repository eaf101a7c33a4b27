// The project's shared test data (real ONNX models and photos with measured detections)
// lives beside the repository, in ../shared. A CI clone may sit elsewhere, so look in
// $OUTPOST_SHARED_DIR, then next to each ancestor of the repo, then /work/shared.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../config/site.js';

function findShared(): string {
  const candidates: string[] = [];
  if (process.env.OUTPOST_SHARED_DIR) candidates.push(process.env.OUTPOST_SHARED_DIR);
  for (let dir = PACKAGE_ROOT; ; dir = dirname(dir)) {
    candidates.push(join(dir, '..', 'shared'));
    if (dirname(dir) === dir) break;
  }
  candidates.push('/work/shared');
  const found = candidates.find((d) => existsSync(join(d, 'models')) && existsSync(join(d, 'fixtures', 'images')));
  if (!found)
    throw new Error(`shared test data (models/, fixtures/images/) not found; looked in: ${candidates.join(', ')}; set OUTPOST_SHARED_DIR`);
  return found;
}

export const SHARED_DIR = findShared();
export const MODELS_DIR = join(SHARED_DIR, 'models');
export const IMAGES_DIR = join(SHARED_DIR, 'fixtures', 'images');
