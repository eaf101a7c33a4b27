// Camera routes: what each camera is doing, and the snapshots detection events point at.
// A snapshot is served only by its id (a fixed file-name shape), never by a path.
import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type {} from '../../gateway/contract/api.js';
import type { CameraDriver } from './driver.js';

export function registerCameraRoutes(app: FastifyInstance, driver: () => CameraDriver | undefined): void {
  app.get('/api/v1/cameras', { config: { minRole: 'viewer' } }, async () => ({ cameras: driver()?.cameras() ?? [] }));

  app.get<{ Params: { id: string } }>('/api/v1/snapshots/:id', { config: { minRole: 'viewer' } }, async (req, reply) => {
    const file = driver()?.snapshotPath(req.params.id) ?? null;
    if (!file) return reply.code(404).send({ error: `no snapshot "${req.params.id}"` });
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=86400').send(createReadStream(file));
  });
}
